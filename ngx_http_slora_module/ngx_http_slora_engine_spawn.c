/*
 * ngx_http_slora_engine_spawn.c: the engine process's birth. In the
 * master: the eventfds the engine and the workers share (one for
 * submissions, one a slot), made before any fork and kept across
 * reloads while the engine's configuration stays the same, and the
 * spawn itself (respawned by nginx when the process dies). In the new
 * process: its setup before the loop of ngx_http_slora_engine_proc.c.
 *
 * The one idea, process hygiene (notes/toolchain.md section 2): the
 * engine resets the signal mask the master blocked during a reload,
 * closes the listening sockets and the other processes' channels,
 * applies the env directive's settings, runs as the workers' user, and
 * dies with the master (PR_SET_PDEATHSIG).
 */

#include <sys/eventfd.h>
#include <sys/prctl.h>

#include "ngx_http_slora_module.h"
#include <ngx_channel.h>


static ngx_int_t ngx_http_slora_engine_alive(void);
static ngx_int_t ngx_http_slora_make_fds(ngx_cycle_t *cycle,
    ngx_uint_t n);
static void ngx_http_slora_close_fds(int sfd, int *fds, ngx_uint_t n);


/*
 * Master-side state. The module's .so stays loaded across reloads (the
 * same path is dlopen'ed again), so these statics outlive a cycle: they
 * say which process slot holds the engine, which configuration it runs,
 * and which eventfds it and the workers share.
 */
static ngx_int_t   ngx_http_slora_engine_slot = -1;
static uint32_t    ngx_http_slora_engine_hash;
static int         ngx_http_slora_submit_efd = -1;
static int        *ngx_http_slora_slot_fds;
static ngx_uint_t  ngx_http_slora_n_slot_fds;


ngx_int_t
ngx_http_slora_engine_start(ngx_cycle_t *cycle,
    ngx_http_slora_main_conf_t *smcf)
{
    int         old_sfd, *old_fds;
    ngx_int_t   respawn;
    ngx_pid_t   pid;
    ngx_uint_t  old_n;

    if (ngx_http_slora_engine_alive()
        && ngx_http_slora_engine_hash == smcf->hash
        && ngx_http_slora_n_slot_fds == (ngx_uint_t) smcf->slots)
    {
        /* the master's reload pass quits every process not just spawned */
        ngx_processes[ngx_http_slora_engine_slot].just_spawn = 1;

        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "slora: engine configuration unchanged, keeping"
                      " engine process %P",
                      ngx_processes[ngx_http_slora_engine_slot].pid);
        return NGX_OK;
    }

    if (ngx_http_slora_engine_alive()) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "slora: engine configuration changed, starting a new"
                      " engine; process %P finishes its requests and exits",
                      ngx_processes[ngx_http_slora_engine_slot].pid);
    }

    old_sfd = ngx_http_slora_submit_efd;
    old_fds = ngx_http_slora_slot_fds;
    old_n = ngx_http_slora_n_slot_fds;

    if (ngx_http_slora_make_fds(cycle, smcf->slots) != NGX_OK) {
        return NGX_ERROR;
    }

    respawn = ngx_process == NGX_PROCESS_MASTER ? NGX_PROCESS_JUST_RESPAWN
                                                : NGX_PROCESS_RESPAWN;

    pid = ngx_spawn_process(cycle, ngx_http_slora_engine_cycle, NULL,
                            "slora engine", respawn);

    if (pid == NGX_INVALID_PID) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "slora: could not spawn the engine process");
        return NGX_ERROR;
    }

    ngx_http_slora_engine_slot = ngx_process_slot;
    ngx_http_slora_engine_hash = smcf->hash;

    /* the old engine and old workers hold their own copies */
    ngx_http_slora_close_fds(old_sfd, old_fds, old_n);

    return NGX_OK;
}


ngx_int_t
ngx_http_slora_slot_fd(uint32_t slot)
{
    if (slot >= ngx_http_slora_n_slot_fds) {
        return -1;
    }

    return ngx_http_slora_slot_fds[slot];
}


ngx_int_t
ngx_http_slora_submit_notify(void)
{
    uint64_t  one;

    one = 1;

    if (write(ngx_http_slora_submit_efd, &one, sizeof(one)) != sizeof(one)
        && ngx_errno != NGX_EAGAIN)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_slora_engine_alive(void)
{
    ngx_process_t  *p;

    if (ngx_http_slora_engine_slot < 0
        || ngx_http_slora_engine_slot >= ngx_last_process)
    {
        return 0;
    }

    p = &ngx_processes[ngx_http_slora_engine_slot];

    return p->pid != -1 && p->proc == ngx_http_slora_engine_cycle
           && !p->exiting;
}


static ngx_int_t
ngx_http_slora_make_fds(ngx_cycle_t *cycle, ngx_uint_t n)
{
    int         sfd, *fds;
    ngx_uint_t  i;

    fds = ngx_alloc(n * sizeof(int), cycle->log);
    if (fds == NULL) {
        return NGX_ERROR;
    }

    /* close-on-exec: a new binary (USR2) makes its own */
    sfd = eventfd(0, EFD_NONBLOCK|EFD_CLOEXEC);
    if (sfd == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "slora: eventfd() failed");
        ngx_free(fds);
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        fds[i] = eventfd(0, EFD_NONBLOCK|EFD_CLOEXEC);

        if (fds[i] == -1) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                          "slora: eventfd() failed for slot %ui of %ui"
                          " (raise the open files limit or lower slots=)",
                          i, n);
            ngx_http_slora_close_fds(sfd, fds, i);
            return NGX_ERROR;
        }
    }

    ngx_http_slora_submit_efd = sfd;
    ngx_http_slora_slot_fds = fds;
    ngx_http_slora_n_slot_fds = n;

    return NGX_OK;
}


static void
ngx_http_slora_close_fds(int sfd, int *fds, ngx_uint_t n)
{
    ngx_uint_t  i;

    if (sfd != -1) {
        close(sfd);
    }

    for (i = 0; i < n; i++) {
        close(fds[i]);
    }

    if (fds != NULL) {
        ngx_free(fds);
    }
}

/* The submissions' eventfd: workers write it, the engine polls it. */

int
ngx_http_slora_submit_fd(void)
{
    return ngx_http_slora_submit_efd;
}


void
ngx_http_slora_engine_setup(ngx_cycle_t *cycle)
{
    sigset_t          set;
    ngx_int_t         n;
    ngx_uint_t        i;
    u_char           *name;
    ngx_str_t        *var;
    ngx_listening_t  *ls;
    ngx_core_conf_t  *ccf;

    ngx_process = NGX_PROCESS_HELPER;

    sigemptyset(&set);
    if (sigprocmask(SIG_SETMASK, &set, NULL) == -1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "slora engine: sigprocmask() failed");
    }

    /*
     * The first engine is forked from init_module, inside
     * ngx_init_cycle, before the master sets its signal handlers (a
     * respawned one inherits them): it takes them here, so that QUIT and
     * TERM reach the engine's loop as flags and a write to a connection
     * the peer reset (Redis) is EPIPE, not SIGPIPE's end of the process.
     */
    if (ngx_init_signals(cycle->log) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "slora engine: cannot set its signal handlers");
    }

    ls = cycle->listening.elts;
    for (i = 0; i < cycle->listening.nelts; i++) {
        if (ls[i].fd != (ngx_socket_t) -1) {
            close(ls[i].fd);
        }
    }

    if (cycle->old_cycle && cycle->old_cycle->listening.nelts) {
        ls = cycle->old_cycle->listening.elts;
        for (i = 0; i < cycle->old_cycle->listening.nelts; i++) {
            if (ls[i].fd != (ngx_socket_t) -1) {
                close(ls[i].fd);
            }
        }
    }

    for (n = 0; n < ngx_last_process; n++) {
        if (n == ngx_process_slot || ngx_processes[n].pid == -1
            || ngx_processes[n].channel[1] == -1)
        {
            continue;
        }

        close(ngx_processes[n].channel[1]);
    }

    close(ngx_processes[ngx_process_slot].channel[0]);

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    /*
     * The engine keeps the master's whole environment (CUDA and NCCL read
     * theirs at start, NCCL_NVLS_ENABLE among them), and the env
     * directive's NAME=value settings apply over it, as in the workers:
     * env CUDA_VISIBLE_DEVICES=1; reaches the engine
     */
    var = ccf->env.elts;

    for (i = 0; i < ccf->env.nelts; i++) {
        /* "NAME=value": len counts NAME, and the value follows, ended by
         * the NUL of the configuration's token */
        if (var[i].data[var[i].len] != '=') {
            continue;
        }

        name = ngx_pnalloc(cycle->pool, var[i].len + 1);

        if (name == NULL) {
            exit(2);
        }

        ngx_cpystrn(name, var[i].data, var[i].len + 1);

        if (setenv((char *) name, (char *) var[i].data + var[i].len + 1, 1)
            == -1)
        {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                          "slora engine: setenv(\"%s\") failed", name);
        }
    }

    if (geteuid() == 0 && ccf->user != (ngx_uid_t) NGX_CONF_UNSET_UINT) {
        /* run as the workers do, not as root */
        if (setgid(ccf->group) == -1
            || initgroups(ccf->username, ccf->group) == -1
            || setuid(ccf->user) == -1)
        {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                          "slora engine: cannot switch to user \"%s\"",
                          ccf->username);
            exit(2);
        }
    }

    /* after setuid(), which clears it */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "slora engine: prctl(PR_SET_PDEATHSIG) failed");
    }

    if (getppid() != ngx_parent) {
        exit(0);
    }

    ngx_setproctitle("slora engine");
}
