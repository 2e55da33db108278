# bench/device-lib.sh: what the device scripts share, sourced by them.
#
# device_nginx_conf FILE MODULE CONNECTIONS [MAIN]: writes an nginx.conf
# for a server run in the foreground under a prefix of its own: the
# module, MAIN's extra main-context lines, one master, two workers, temp
# paths under the prefix, and the http{} body read from stdin.

device_nginx_conf() {
    {
        echo "load_module $2;"
        [ -n "${4:-}" ] && echo "$4"
        cat <<CONF
daemon off;
master_process on;
worker_processes 2;
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
