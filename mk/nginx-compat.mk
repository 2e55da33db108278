# mk/nginx-compat.mk: the module against Debian 13's nginx (1.26.3) as
# well as Debian 12's (1.22.1, which mk/module.mk builds against and the
# tests run).
#
#   make nginx-compat       fetch nginx 1.26.3's source (tools/fetch-nginx-src,
#                           checked by sha256), then build that nginx and
#                           the module against it in build/nginx-compat/,
#                           every warning an error (nginx's own -Werror)
#   make test-nginx-compat  the nginx tests NGINX_COMPAT_TESTS names
#                           (t/*.t for all of them) with that nginx and
#                           that module (SLORA_NGINX, SLORA_MODULE);
#                           make test runs it after the tests on 1.22.1
#
# What moved between the two: HTTP/2 (rewritten in 1.25, `http2 on`),
# QUIC and its headers (ngx_event_udp.h needs ngx_config.h's _GNU_SOURCE
# before any system header: a module that includes <poll.h> first does
# not build against 1.26), and the version a module is checked against
# when it loads (each build of the module loads into its own nginx
# alone). The default tests are those that reach what the module asks
# of nginx most:
# HTTP/2, streams and clients that vanish, the OpenAI clients, reloads,
# daemon mode and binary upgrades, the edges of HTTP, bad input, and
# `make install` (its module the one built here).

NGINX_COMPAT_VERSION := $(shell sed -n "s/^VERSION='\(.*\)'/\1/p" \
                                tools/fetch-nginx-src)
NGINX_COMPAT_DIR     := $(CURDIR)/$(BUILD)/nginx-compat
NGINX_COMPAT_TREE    := $(NGINX_COMPAT_DIR)/nginx-$(NGINX_COMPAT_VERSION)
NGINX_COMPAT_BIN     := $(NGINX_COMPAT_TREE)/objs/nginx
NGINX_COMPAT_SO      := $(NGINX_COMPAT_TREE)/objs/ngx_http_slora_module.so
NGINX_COMPAT_TESTS   ?= t/http2.t t/stream.t t/faults.t t/openai.t \
                        t/reload.t t/daemon.t t/edge.t t/badinput.t \
                        t/install.t

.PHONY: nginx-compat test-nginx-compat

nginx-compat: $(NGINX_COMPAT_TREE)/objs/.built

$(NGINX_COMPAT_TREE)/.sha256-ok: tools/fetch-nginx-src
	tools/fetch-nginx-src $(NGINX_COMPAT_DIR)

# the modules of Debian's builds that the tests reach (TLS for the
# browser's https, HTTP/2 and /3, realip, auth_request, stub_status)
$(NGINX_COMPAT_TREE)/objs/Makefile: $(NGINX_COMPAT_TREE)/.sha256-ok \
                                    config config.make mk/nginx-compat.mk \
                                    $(ENGINE_HEADERS_LIST)
	cd $(NGINX_COMPAT_TREE) && SLORA_BUILD=$(BUILD) ./configure \
	    --with-compat --with-threads --with-pcre-jit \
	    --with-http_ssl_module --with-http_v2_module --with-http_v3_module \
	    --with-http_realip_module --with-http_auth_request_module \
	    --with-http_stub_status_module --with-http_gunzip_module \
	    --with-http_sub_module --add-dynamic-module=$(CURDIR) \
	    > $(NGINX_COMPAT_DIR)/configure.log \
	    || { tail -20 $(NGINX_COMPAT_DIR)/configure.log; exit 1; }

$(NGINX_COMPAT_TREE)/objs/.built: $(NGINX_COMPAT_TREE)/objs/Makefile \
                                  $(MODULE_SRCS) $(LIB) $(ENGINE_HEADERS)
	$(MAKE) -C $(NGINX_COMPAT_TREE) -f objs/Makefile binary modules
	@touch $@

test-nginx-compat: all fetch nginx-compat
	$(NGINX_COMPAT_BIN) -v
	SLORA_NGINX=$(NGINX_COMPAT_BIN) SLORA_MODULE=$(NGINX_COMPAT_SO) \
	    prove $(NGINX_COMPAT_TESTS)
