/*
 * ngx_http_slora_engine_spawn.c: the engine process's birth. In the
 * master: the eventfds the engine and the workers share (one for
 * submissions, one a slot), made at configuration time and kept across
 * reloads while the engine's configuration stays the same, and the
 * spawn itself (respawned by nginx when the process dies). In the new
 * process: its setup before the loop of ngx_http_slora_engine_proc.c.
 *
 * The one idea, process hygiene (notes/toolchain.md section 2): the
 * engine resets the signal mask the master blocked during a reload,
 * closes the listening sockets, the other processes' channels and (a
 * reload's new engine) the old engine's eventfds and zones, applies the
 * env directive's settings, runs as the workers' user, and dies with the
 * master (PR_SET_PDEATHSIG). Whatever can fail for want of resources is
 * made at configuration time, where failing fails only the reload.
 */

#include "ngx_http_slora_module.h"
#include <ngx_channel.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>


typedef struct {
    int          sfd;       /* submissions */
    int         *fds;       /* [n], one a slot */
    ngx_uint_t   n;
} ngx_http_slora_fds_t;


static ngx_int_t ngx_http_slora_engine_alive(void);
static ngx_int_t ngx_http_slora_engine_kept(ngx_http_slora_main_conf_t *smcf);
static ngx_int_t ngx_http_slora_make_fds(ngx_log_t *log, ngx_uint_t n,
    ngx_http_slora_fds_t *out);
static void ngx_http_slora_close_fds(ngx_http_slora_fds_t *f);
static void ngx_http_slora_pending_cleanup(void *data);
static void ngx_http_slora_engine_unmap_old(ngx_cycle_t *cycle);
static void ngx_http_slora_engine_close_old(ngx_cycle_t *cycle);


/*
 * Master-side state. The module's .so stays loaded across reloads (the
 * same path is dlopen'ed again), so these statics outlive a cycle: which
 * process slot holds the engine and which configuration it runs; the
 * eventfds it and the workers share (current); those made at
 * configuration time for an engine not yet spawned (pending, owned by
 * the cycle being made, closed if that cycle fails); and those of the
 * engine being replaced (retired: the master closes them after the
 * spawn, and the new engine, which inherits them, at its start).
 */
static ngx_int_t             ngx_http_slora_engine_slot = -1;
static uint32_t              ngx_http_slora_engine_hash;
static ngx_uint_t            ngx_http_slora_engine_salt;
static ngx_http_slora_fds_t  ngx_http_slora_current = { -1, NULL, 0 };
static ngx_http_slora_fds_t  ngx_http_slora_pending = { -1, NULL, 0 };
static ngx_http_slora_fds_t  ngx_http_slora_retired = { -1, NULL, 0 };
static ngx_cycle_t          *ngx_http_slora_pending_cycle;
static char                 *ngx_http_slora_engine_name;


/*
 * Configuration time (postconfiguration): the eventfds of an engine that
 * this configuration will start, made here, where a failure (the open
 * files limit) fails the reload and leaves the running nginx as it was;
 * in init_module it would end the master. Nothing for nginx -t and
 * nginx -s, or when the running engine is kept.
 */

ngx_int_t
ngx_http_slora_engine_prepare(ngx_conf_t *cf,
    ngx_http_slora_main_conf_t *smcf)
{
    ngx_pool_cleanup_t  *cln;

    if (ngx_test_config || ngx_process == NGX_PROCESS_SIGNALLER
        || ngx_http_slora_engine_kept(smcf))
    {
        return NGX_OK;
    }

    /* a cycle that failed before its pool was cleaned: not expected */
    ngx_http_slora_close_fds(&ngx_http_slora_pending);

    cln = ngx_pool_cleanup_add(cf->cycle->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_slora_make_fds(cf->log, smcf->slots, &ngx_http_slora_pending)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_slora_pending_cycle = cf->cycle;
    cln->handler = ngx_http_slora_pending_cleanup;
    cln->data = cf->cycle;

    return NGX_OK;
}


static void
ngx_http_slora_pending_cleanup(void *data)
{
    ngx_cycle_t  *cycle = data;

    /* the cycle failed before init_module took its eventfds */
    if (ngx_http_slora_pending_cycle == cycle) {
        ngx_http_slora_close_fds(&ngx_http_slora_pending);
        ngx_http_slora_pending_cycle = NULL;
    }
}


/*
 * init_module: keeps the running engine, or spawns one on the eventfds
 * made at configuration time. A fork that fails on a reload is not the
 * master's end (init_module's failure would be): the new workers answer
 * 503 with the reason until a reload spawns an engine again.
 */

ngx_int_t
ngx_http_slora_engine_start(ngx_cycle_t *cycle,
    ngx_http_slora_main_conf_t *smcf)
{
    ngx_pid_t       pid;
    ngx_int_t       respawn;
    ngx_uint_t      salt;
    slora_queue_t  *q;

    if (ngx_http_slora_engine_kept(smcf)) {
        /* the master's reload pass quits every process not just spawned */
        ngx_processes[ngx_http_slora_engine_slot].just_spawn = 1;

        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "slora: engine configuration unchanged, keeping"
                      " engine process %P",
                      ngx_processes[ngx_http_slora_engine_slot].pid);
        return NGX_OK;
    }

    if (ngx_http_slora_pending_cycle != cycle) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "slora: no eventfds were made for the engine at"
                      " configuration time");
        return NGX_ERROR;
    }

    if (ngx_http_slora_engine_alive()) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "slora: engine configuration changed, starting a new"
                      " engine; process %P finishes its requests and exits",
                      ngx_processes[ngx_http_slora_engine_slot].pid);
    }

    ngx_http_slora_retired = ngx_http_slora_current;
    ngx_http_slora_current = ngx_http_slora_pending;
    ngx_http_slora_pending.sfd = -1;
    ngx_http_slora_pending.fds = NULL;
    ngx_http_slora_pending.n = 0;
    ngx_http_slora_pending_cycle = NULL;

    /* the zone's name, as ngx_http_slora_zone_add gave it */
    salt = ngx_http_slora_engine_zone_salt(smcf);

    respawn = ngx_process == NGX_PROCESS_MASTER ? NGX_PROCESS_JUST_RESPAWN
                                                : NGX_PROCESS_RESPAWN;

    /*
     * ngx_processes[] keeps the name, which the master logs when the
     * engine exits: past a reload that drops this module, whose data is
     * unmapped then while the old engine finishes, so the name lives in
     * the master's heap (once, for the module's life there)
     */
    if (ngx_http_slora_engine_name == NULL) {
        ngx_http_slora_engine_name = ngx_alloc(sizeof("slora engine"),
                                               cycle->log);
        if (ngx_http_slora_engine_name != NULL) {
            ngx_memcpy(ngx_http_slora_engine_name, "slora engine",
                       sizeof("slora engine"));
        }
    }

    pid = ngx_spawn_process(cycle, ngx_http_slora_engine_cycle, NULL,
                            ngx_http_slora_engine_name != NULL
                            ? ngx_http_slora_engine_name : "slora engine",
                            respawn);

    /* the old engine and old workers hold their own copies */
    ngx_http_slora_close_fds(&ngx_http_slora_retired);

    if (pid == NGX_INVALID_PID) {
        ngx_http_slora_engine_slot = -1;

        if (ngx_is_init_cycle(cycle->old_cycle)) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "slora: could not spawn the engine process");
            return NGX_ERROR;
        }

        q = ngx_http_slora_queue(smcf);

        if (q != NULL) {
            (void) ngx_cpystrn((u_char *) q->engine_err,
                               (u_char *) "the engine process could not be"
                               " started (see the error log); a reload"
                               " tries again", sizeof(q->engine_err));
        }

        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "slora: could not spawn the engine process: requests"
                      " are answered 503 until a reload starts it");
        return NGX_OK;
    }

    ngx_http_slora_engine_slot = ngx_process_slot;
    ngx_http_slora_engine_hash = smcf->hash;
    ngx_http_slora_engine_salt = salt;

    return NGX_OK;
}


/*
 * What tells this configuration's zone ("slora_<hash>[_<salt>]") from
 * another of the same hash: the running engine's salt where that engine
 * is kept; one more where an engine of this hash still runs but was told
 * to quit (WINCH, then HUP), since nginx would hand the new engine the
 * zone it drains on: two engines on one ring, the new one failing the
 * old one's requests as a dead predecessor's.
 */

ngx_uint_t
ngx_http_slora_engine_zone_salt(ngx_http_slora_main_conf_t *smcf)
{
    ngx_process_t  *p;

    if (ngx_http_slora_engine_slot < 0
        || ngx_http_slora_engine_slot >= ngx_last_process
        || ngx_http_slora_engine_hash != smcf->hash)
    {
        return 0;
    }

    p = &ngx_processes[ngx_http_slora_engine_slot];

    if (p->pid == -1 || p->proc != ngx_http_slora_engine_cycle) {
        return 0;
    }

    return p->exiting ? ngx_http_slora_engine_salt + 1
                      : ngx_http_slora_engine_salt;
}


ngx_int_t
ngx_http_slora_slot_fd(uint32_t slot)
{
    if (slot >= ngx_http_slora_current.n) {
        return -1;
    }

    return ngx_http_slora_current.fds[slot];
}


ngx_int_t
ngx_http_slora_submit_notify(void)
{
    uint64_t  one;

    one = 1;

    if (write(ngx_http_slora_current.sfd, &one, sizeof(one)) != sizeof(one)
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
ngx_http_slora_engine_kept(ngx_http_slora_main_conf_t *smcf)
{
    return ngx_http_slora_engine_alive()
           && ngx_http_slora_engine_hash == smcf->hash
           && ngx_http_slora_current.n == (ngx_uint_t) smcf->slots;
}


static ngx_int_t
ngx_http_slora_make_fds(ngx_log_t *log, ngx_uint_t n,
    ngx_http_slora_fds_t *out)
{
    ngx_uint_t            i;
    ngx_http_slora_fds_t  f;

    f.fds = ngx_alloc(n * sizeof(int), log);
    if (f.fds == NULL) {
        return NGX_ERROR;
    }

    f.n = 0;

    /* close-on-exec: a new binary (USR2) makes its own */
    f.sfd = eventfd(0, EFD_NONBLOCK|EFD_CLOEXEC);
    if (f.sfd == -1) {
        ngx_log_error(NGX_LOG_EMERG, log, ngx_errno,
                      "slora: eventfd() failed");
        ngx_http_slora_close_fds(&f);
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        f.fds[i] = eventfd(0, EFD_NONBLOCK|EFD_CLOEXEC);

        if (f.fds[i] == -1) {
            ngx_log_error(NGX_LOG_EMERG, log, ngx_errno,
                          "slora: eventfd() failed for slot %ui of %ui"
                          " (raise the open files limit or lower slots=)",
                          i, n);
            ngx_http_slora_close_fds(&f);
            return NGX_ERROR;
        }

        f.n = i + 1;
    }

    *out = f;

    return NGX_OK;
}


static void
ngx_http_slora_close_fds(ngx_http_slora_fds_t *f)
{
    ngx_uint_t  i;

    if (f->sfd != -1) {
        close(f->sfd);
    }

    for (i = 0; i < f->n; i++) {
        close(f->fds[i]);
    }

    if (f->fds != NULL) {
        ngx_free(f->fds);
    }

    f->sfd = -1;
    f->fds = NULL;
    f->n = 0;
}

/* The submissions' eventfd: workers write it, the engine polls it. */

int
ngx_http_slora_submit_fd(void)
{
    return ngx_http_slora_current.sfd;
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

    /* a reload's new engine: not the old engine's eventfds and zones */
    ngx_http_slora_close_fds(&ngx_http_slora_retired);
    ngx_http_slora_engine_unmap_old(cycle);
    ngx_http_slora_engine_close_old(cycle);

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


/*
 * In a reload's new engine: the old cycle's shared zones that the new
 * cycle does not keep (the old engine's zone among them). The master
 * unmaps them after init_module, where this process was forked; without
 * this the engine would hold them for its life.
 */

static void
ngx_http_slora_engine_unmap_old(ngx_cycle_t *cycle)
{
    ngx_uint_t        i, n;
    ngx_shm_zone_t   *ozone, *zone;
    ngx_list_part_t  *opart, *part;

    if (cycle->old_cycle == NULL || ngx_is_init_cycle(cycle->old_cycle)) {
        return;
    }

    opart = &cycle->old_cycle->shared_memory.part;
    ozone = opart->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= opart->nelts) {
            if (opart->next == NULL) {
                return;
            }

            opart = opart->next;
            ozone = opart->elts;
            i = 0;
        }

        if (ozone[i].shm.addr == NULL) {
            continue;
        }

        part = &cycle->shared_memory.part;
        zone = part->elts;

        for (n = 0; /* void */ ; n++) {

            if (n >= part->nelts) {
                if (part->next == NULL) {
                    break;
                }

                part = part->next;
                zone = part->elts;
                n = 0;
            }

            if (zone[n].shm.addr == ozone[i].shm.addr) {
                break;
            }
        }

        if (n >= part->nelts) {
            ngx_shm_free(&ozone[i].shm);
        }
    }
}


/*
 * Forked from init_module, the engine has the files of the cycle being
 * replaced (its error and access logs; at the first start, the log of
 * -e), which the master closes only after init_module, and nginx's
 * ngx_cycle, whose log the signal handler writes to, is still that
 * cycle. Without this the engine holds them for its life: a log rotated
 * and deleted keeps its disk space. A respawn has none to close.
 */

static void
ngx_http_slora_engine_close_old(ngx_cycle_t *cycle)
{
    ngx_uint_t        i;
    ngx_cycle_t      *old;
    ngx_open_file_t  *file;
    ngx_list_part_t  *part;

    old = cycle->old_cycle;
    ngx_cycle = cycle;

    if (old == NULL) {
        return;
    }

    if (ngx_is_init_cycle(old)) {
        /* main() closes it after ngx_init_cycle() */
        if (old->log->file->fd != ngx_stderr
            && old->log->file->fd != NGX_INVALID_FILE)
        {
            (void) ngx_close_file(old->log->file->fd);
        }

        return;
    }

    part = &old->open_files.part;
    file = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return;
            }

            part = part->next;
            file = part->elts;
            i = 0;
        }

        if (file[i].fd == NGX_INVALID_FILE || file[i].fd == ngx_stderr) {
            continue;
        }

        (void) ngx_close_file(file[i].fd);
    }
}
