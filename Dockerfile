# Dockerfile: what `make run` starts (SmolLM2-135M-Instruct on the CPU,
# three demo adapters in conf/adapters/), in a container, for a machine
# that is not Debian or Ubuntu: a Mac's or a Windows laptop's Docker.
#
#   docker build -t slora .
#   docker run --rm -p 8080:8080 slora
#   curl localhost:8080/v1/chat/completions -H 'Content-Type: application/json' \
#        -d '{"model":"demo-r8","messages":[{"role":"user","content":"Hi"}]}'
#
# The image is built as `make run` builds: Debian's nginx and libraries
# from apt, the engine and the module compiled here, for the machine's own
# architecture (x86-64, or arm64 on Apple silicon), the model fetched by
# tools/fetch-model and checked by its sha256; the image that runs holds
# what the build made and the libraries it links, no compiler. The server is
# conf/nginx.conf but for three lines: it listens on the container's
# port 8080 rather than its loopback, and logs to the container's stderr
# and stdout (`docker logs`). The admin and metrics locations still
# allow 127.0.0.1 alone: from outside the container they answer 403.
# `docker stop` sends SIGQUIT: streams in flight end first.
# tools/docker-check builds and checks it.

# the base: Debian 12's, or an image of it made elsewhere (tools/docker-check)
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build

RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/slora
COPY . .

RUN make run-deps \
    && make -j"$(nproc)" module cli \
    && make run-adapters

RUN sed -e 's/^\( *listen  *\)127\.0\.0\.1:8080;/\18080;/' \
        -e 's/^\( *error_log  *\)logs\/error\.log/\1stderr/' \
        -e 's/^\( *access_log  *\)logs\/access\.log/\1\/dev\/stdout/' \
        conf/nginx.conf > conf/container.conf \
    && grep -q '^ *listen  *8080;' conf/container.conf \
    && grep -q '^ *error_log  *stderr' conf/container.conf \
    && grep -q '^ *access_log  */dev/stdout' conf/container.conf


# The server alone: nginx and the libraries the module links, no compiler.
FROM ${BASE}

RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx libcjson1 \
       libpcre2-8-0 libopenblas0-pthread libhiredis0.14 libssl3 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/slora
COPY --from=build /opt/slora/build/nginx/objs/ngx_http_slora_module.so \
     build/nginx/objs/
COPY --from=build /opt/slora/bin bin
COPY --from=build /opt/slora/models models
COPY --from=build /opt/slora/conf conf

RUN mkdir -p run/logs run/tmp \
    && ! ldd build/nginx/objs/ngx_http_slora_module.so bin/slora \
         | grep 'not found' \
    && nginx -t -q -p /opt/slora/run/ -c /opt/slora/conf/container.conf \
       -e stderr

EXPOSE 8080
STOPSIGNAL SIGQUIT
CMD ["nginx", "-p", "/opt/slora/run/", "-c", "/opt/slora/conf/container.conf", "-e", "stderr"]
