# bench/device-lib.sh: what the device scripts share, sourced by them.
#
# device_cublas_dir: the folder of the image's pip cuBLAS, if it has one
# (the CUDA backend's cuBLASLt where /usr/local/cuda lacks it).
#
# device_engine_env DIR: /tmp/slora unpacked from DIR/slora.gz, DIR (an
# absolute path), CUDA's and cuBLAS's libraries on LD_LIBRARY_PATH, and
# DIR/libslora_cuda.so as SLORA_CUDA_LIB: what running the engine from a
# carry folder takes.
#
# device_smollm2 DEST: SmolLM2 joined and unzipped at DEST from the three
# gzipped parts bench/device-pack.sh spreads over .carry/a, .carry/b and
# .carry/c (left on the machine by the calls before), checked against its
# sha256; says which part is missing and fails otherwise.
#
# device_built_from DIR: the commit the carry's binaries were built from,
# as bench/device-pack.sh wrote it there (the git on the device reads the
# tree the call carried, which may be later than the binaries).
#
# device_nginx_bins DIR: nginx and the module unpacked in DIR where the
# carry brings them gzipped (bench/device-pack.sh one, so that its folder
# fits a call beside the tree); a carry with them plain is left as it is.
#
# device_nginx_stop PID [ENGINE]: QUIT to the nginx master PID (a child
# of the caller), 10 s for it to end, then KILL; ENGINE, its engine's
# pid, is killed too if still there a second later. The CPU benches
# (bench/lookup-cpu.sh, bench/slo-cpu.sh) stop their servers with it.
#
# device_nginx_conf FILE MODULE CONNECTIONS [MAIN]: writes an nginx.conf
# for a server run in the foreground under a prefix of its own (its
# logs/ and tmp/ made by the caller): the module, MAIN's extra
# main-context lines, one master, two workers (NGINX_WORKERS=N: N), temp
# paths under the prefix, and the http{} body read from stdin. The CPU
# benches write theirs with it too (bench/lookup-cpu.sh, slo-cpu.sh,
# fairness.sh, frontend.sh, catalog-tiers.sh). NGINX_DAEMON=on
# daemonizes it instead.

device_cublas_dir() {
    local py='import nvidia.cublas, os; '
    py=$py'print(os.path.dirname(nvidia.cublas.__file__) + "/lib")'
    python3 -c "$py" 2>/dev/null
}

device_built_from() {
    if [ -f "$1/built-from" ]; then
        echo "binaries built from $(cat "$1/built-from")"
    else
        echo "binaries built from: not said ($1/built-from is missing)"
    fi
}

device_nginx_bins() {
    local f
    for f in nginx ngx_http_slora_module.so; do
        if [ -f "$1/$f.gz" ] && [ ! -f "$1/$f" ]; then
            gunzip -c "$1/$f.gz" > "$1/$f" && chmod +x "$1/$f" || return 1
        fi
    done
}

device_engine_env() {
    gunzip -c "$1/slora.gz" > /tmp/slora && chmod +x /tmp/slora
    export LD_LIBRARY_PATH=$(device_cublas_dir):${LD_LIBRARY_PATH:-}
    export LD_LIBRARY_PATH=$1:/usr/local/cuda/lib64:$LD_LIBRARY_PATH
    export SLORA_CUDA_LIB=$1/libslora_cuda.so
}

device_smollm2() {
    local c=$PWD/.carry part
    for part in a/model.0 b/model.1 c/model.2 a/model.sha256; do
        if [ ! -f "$c/$part" ]; then
            echo "SmolLM2's part .carry/$part is not on this machine: carry" \
                 ".carry/a, .carry/b and .carry/c in the calls before" >&2
            return 1
        fi
    done
    cat "$c/a/model.0" "$c/b/model.1" "$c/c/model.2" | gunzip > "$1"
    if [ "$(sha256sum "$1" | cut -d' ' -f1)" != "$(cat "$c/a/model.sha256")" ]
    then
        echo "SmolLM2's parts do not make the model (sha256 differs)" >&2
        rm -f "$1"
        return 1
    fi
}

device_nginx_stop() {
    local master=$1 engine=${2:-} _
    kill -QUIT "$master" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$master" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$master" 2>/dev/null || true
    wait "$master" 2>/dev/null || true
    if [ -n "$engine" ] && kill -0 "$engine" 2>/dev/null; then
        sleep 1
        kill -KILL "$engine" 2>/dev/null || true
    fi
}

device_nginx_conf() {
    {
        echo "load_module $2;"
        [ -n "${4:-}" ] && echo "$4"
        cat <<CONF
daemon ${NGINX_DAEMON:-off};
master_process on;
worker_processes ${NGINX_WORKERS:-2};
pid logs/nginx.pid;
error_log logs/error.log notice;
events { worker_connections $3; }
http {
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
CONF
        cat
        echo "}"
    } > "$1"
}
