# config.make: make rules nginx's configure appends to objs/Makefile for
# this addon: the module is relinked when the engine library changes, and
# the library is brought up to date by the project's own Makefile first.

cat << END >> $NGX_MAKEFILE

$NGX_OBJS${ngx_dirsep}ngx_http_slora_module$ngx_modext: \\
	$SLORA_LIBA

$SLORA_LIBA: slora_engine_lib

slora_engine_lib:
	\$(MAKE) -C $ngx_addon_dir BUILD=${SLORA_BUILD:-build} lib

.PHONY: slora_engine_lib

END
