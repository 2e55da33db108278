# mk/module.mk: the nginx module and the demo server.
#
#   make module   build/nginx/objs/ngx_http_slora_module.so, built against
#                 Debian's nginx headers (/usr/share/nginx/src, from
#                 nginx-dev) with --with-compat, so /usr/sbin/nginx loads it
#   make run      install what is missing, fetch the model, make demo
#                 adapters, build, and run nginx in the foreground on
#                 http://127.0.0.1:8080/ with conf/nginx.conf (prefix run/)
#   make install  the module into the system's nginx as Debian lays a
#                 module package out (uninstall takes it away): the .so
#                 in MODULES_DIR with the CUDA backend beside it where
#                 one was built, its load_module line in
#                 NGINX_CONF_DIR/modules-available, enabled by a link in
#                 modules-enabled (which Debian's nginx.conf includes),
#                 bin/slora in BINDIR; DESTDIR stages it
#
# Debian's copy of nginx's configure writes no top-level Makefile, so the
# module is built with `make -f objs/Makefile modules`. configure runs once
# (again only when config or config.make change, or the set of engine
# headers, which config lists as the module's dependencies); the copy of
# the source tree it needs lives in build/nginx-src, its outputs in
# build/nginx/objs.

NGINX          ?= /usr/sbin/nginx
NGINX_SRC      ?= /usr/share/nginx/src
NGINX_TREE     := $(CURDIR)/$(BUILD)/nginx-src
NGINX_OBJS     := $(CURDIR)/$(BUILD)/nginx/objs
MODULE_SO      := $(NGINX_OBJS)/ngx_http_slora_module.so
MODULE_SRCS    := $(wildcard ngx_http_slora_module/*.c \
                             ngx_http_slora_module/*.h)

# config names engine/*.h as it finds them when configure runs: their
# names are written here as they change (a header added or taken away),
# and configure runs again after
ENGINE_HEADERS      := $(sort $(wildcard engine/*.h))
ENGINE_HEADERS_LIST := $(BUILD)/engine-headers.list
ifneq ($(ENGINE_HEADERS),$(shell cat $(ENGINE_HEADERS_LIST) 2>/dev/null))
$(shell mkdir -p $(BUILD) && echo '$(ENGINE_HEADERS)' \
        > $(ENGINE_HEADERS_LIST))
endif

# and written again where a clean took it after
$(ENGINE_HEADERS_LIST):
	@mkdir -p $(@D)
	@echo '$(ENGINE_HEADERS)' > $@

RUN_PREFIX     := $(CURDIR)/run
RUN_MODEL      := models/SmolLM2-135M-Instruct.Q4_1.gguf
RUN_ADAPTERS   := conf/adapters
RUN_DEMO       := demo-r8:8:1 demo-r16:16:2 demo-r32:32:3
# started as root, nginx would run its workers and the engine as "nobody",
# who cannot read a tree under a private home folder (/root, or a user's:
# Debian's adduser makes them 0700), so they run as the tree's owner
# (one the system has a name for: a bind mount's stranger stays nobody,
# and the engine's error then names that user); expanded by `run` alone,
# not by every make
RUN_OWNER       = $(if $(filter 0,$(shell id -u)),$(shell stat -c '%U %G' .))
RUN_USER        = $(if $(RUN_OWNER),$(if $(findstring UNKNOWN,$(RUN_OWNER)),,\
                    -g 'user $(RUN_OWNER);'))
APT_PACKAGES   := gcc libc6-dev nginx nginx-dev libcjson-dev libpcre2-dev \
                  libopenblas-dev libhiredis-dev pkg-config curl \
                  ca-certificates python3

# the module `make install` lays out: this build's, or one built against
# another nginx (t/install.t installs the one its tests load)
INSTALL_MODULE ?= $(MODULE_SO)
MODULES_DIR    ?= /usr/lib/nginx/modules
NGINX_CONF_DIR ?= /etc/nginx
BINDIR         ?= /usr/local/bin
LOAD_CONF      := modules-available/mod-http-slora.conf
LOAD_LINK      := modules-enabled/50-mod-http-slora.conf

.PHONY: module run run-deps run-adapters install uninstall

all: module

module: $(MODULE_SO)

$(NGINX_OBJS)/Makefile: config config.make mk/module.mk \
                        $(ENGINE_HEADERS_LIST)
	rm -rf $(NGINX_TREE)
	@mkdir -p $(dir $(NGINX_TREE)) $(NGINX_OBJS)
	cp -r $(NGINX_SRC) $(NGINX_TREE)
	cd $(NGINX_TREE) && SLORA_BUILD=$(BUILD) ./configure --with-compat \
	    --with-threads \
	    $(if $(SAN),--with-cc-opt='$(SAN)' --with-ld-opt='$(SAN)') \
	    --builddir=$(NGINX_OBJS) --add-dynamic-module=$(CURDIR)

$(MODULE_SO): $(NGINX_OBJS)/Makefile $(MODULE_SRCS) $(LIB) \
              $(ENGINE_HEADERS)
	cd $(NGINX_TREE) && $(MAKE) -f $(NGINX_OBJS)/Makefile modules
	@touch $@

run-deps:
	@missing=; for p in $(APT_PACKAGES); do \
	    dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	    $$sudo apt-get update && $$sudo apt-get install -y $$missing; \
	fi

run-adapters: cli $(RUN_MODEL)
	@mkdir -p $(RUN_ADAPTERS)
	@for d in $(RUN_DEMO); do \
	    name=$${d%%:*}; rest=$${d#*:}; rank=$${rest%%:*}; \
	    seed=$${rest#*:}; \
	    if [ ! -f $(RUN_ADAPTERS)/$$name/adapter_config.json ]; then \
	        echo "adapter $$name (rank $$rank)"; \
	        bin/slora mkadapter --model $(RUN_MODEL) \
	            --out $(RUN_ADAPTERS)/$$name --rank $$rank --seed $$seed \
	            || exit 1; \
	    fi; \
	done

$(RUN_MODEL):
	tools/fetch-model

run: run-deps
	$(MAKE) module cli
	$(MAKE) run-adapters
	@mkdir -p $(RUN_PREFIX)/logs $(RUN_PREFIX)/tmp $(RUN_PREFIX)/state
	$(NGINX) -t -q -p $(RUN_PREFIX)/ -c $(CURDIR)/conf/nginx.conf \
	    -e $(RUN_PREFIX)/logs/error.log $(RUN_USER)
	@echo
	@echo "slora: http://127.0.0.1:8080/  (Ctrl-C stops it; logs in run/logs)"
	@echo "  a chat in the browser there, or once the engine is ready:"
	@echo "  curl -sN 'http://127.0.0.1:8080/v1/stream?model=demo-r8&chat=1&prompt=Hello&format=text'"
	@echo
	$(NGINX) -p $(RUN_PREFIX)/ -c $(CURDIR)/conf/nginx.conf \
	    -e $(RUN_PREFIX)/logs/error.log $(RUN_USER)

install: module cli
	install -d $(DESTDIR)$(MODULES_DIR) $(DESTDIR)$(BINDIR) \
	    $(DESTDIR)$(NGINX_CONF_DIR)/modules-available \
	    $(DESTDIR)$(NGINX_CONF_DIR)/modules-enabled
	install -m 0644 $(INSTALL_MODULE) \
	    $(DESTDIR)$(MODULES_DIR)/ngx_http_slora_module.so
	if [ -f $(CUDA_SO) ]; then \
	    install -m 0644 $(CUDA_SO) $(DESTDIR)$(MODULES_DIR)/; fi
	install -m 0755 bin/slora $(DESTDIR)$(BINDIR)/
	echo 'load_module $(MODULES_DIR)/ngx_http_slora_module.so;' \
	    > $(DESTDIR)$(NGINX_CONF_DIR)/$(LOAD_CONF)
	ln -sfn ../$(LOAD_CONF) $(DESTDIR)$(NGINX_CONF_DIR)/$(LOAD_LINK)

uninstall:
	rm -f $(DESTDIR)$(MODULES_DIR)/ngx_http_slora_module.so \
	    $(DESTDIR)$(MODULES_DIR)/libslora_cuda.so $(DESTDIR)$(BINDIR)/slora \
	    $(DESTDIR)$(NGINX_CONF_DIR)/$(LOAD_LINK) \
	    $(DESTDIR)$(NGINX_CONF_DIR)/$(LOAD_CONF)
