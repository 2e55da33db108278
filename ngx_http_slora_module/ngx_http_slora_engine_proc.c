/*
 * ngx_http_slora_engine_proc.c: the engine process. The master spawns it
 * from init_module and respawns it when it dies; it owns the model (the
 * engine library, engine/slora_engine.h) and talks to workers only through
 * the shared zone and eventfds made here, in the master, before any fork.
 *
 * The one idea is the loop: poll the submission eventfd and the master's
 * channel (with a zero timeout while requests run), drain the ring into
 * slora_engine_submit(), run one slora_engine_step(), publish each token
 * into its slot with a release store, then write the eventfd of every slot
 * that changed, once per step. A worker never waits on the engine and the
 * engine never waits on a worker: output buffers hold max_tokens.
 *
 * Process hygiene (notes/toolchain.md section 2): the engine reads its
 * channel (QUIT drains running requests, TERMINATE exits), dies with the
 * master (PR_SET_PDEATHSIG), resets the signal mask the master blocked
 * during a reload, closes the listening sockets, updates nginx's clock,
 * and bumps the zone's epoch so that slots a dead predecessor was running
 * are failed instead of left hanging.
 */

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>

#include "ngx_http_slora_module.h"
#include <ngx_channel.h>


typedef struct {
    ngx_cycle_t                 *cycle;
    ngx_http_slora_main_conf_t  *smcf;
    slora_queue_t               *q;
    slora_engine_t              *engine;
    uint32_t                     epoch;
    uint32_t                     n_slots;
    uint32_t                     n_active;
    uint8_t                     *active;      /* [n_slots] */
    uint8_t                     *cancelled;   /* [n_slots] */
    uint8_t                     *dirty;       /* [n_slots] */
    uint32_t                    *dirty_list;  /* [n_slots] */
    uint32_t                     n_dirty;
    unsigned                     quitting:1;
} ngx_http_slora_engine_ctx_t;


static void ngx_http_slora_engine_cycle(ngx_cycle_t *cycle, void *data);
static void ngx_http_slora_engine_setup(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_slora_engine_alive(void);
static ngx_int_t ngx_http_slora_make_fds(ngx_cycle_t *cycle,
    ngx_uint_t n);
static void ngx_http_slora_close_fds(int sfd, int *fds, ngx_uint_t n);
static void ngx_http_slora_engine_load(ngx_http_slora_engine_ctx_t *ec);
static void ngx_http_slora_engine_reap(ngx_http_slora_engine_ctx_t *ec);
static void ngx_http_slora_engine_channel(ngx_http_slora_engine_ctx_t *ec);
static ngx_uint_t ngx_http_slora_engine_take(
    ngx_http_slora_engine_ctx_t *ec);
static void ngx_http_slora_engine_submit(ngx_http_slora_engine_ctx_t *ec,
    uint32_t i);
static void ngx_http_slora_engine_event(void *data,
    const slora_event_t *ev);
static void ngx_http_slora_engine_mark(ngx_http_slora_engine_ctx_t *ec,
    uint32_t i);
static void ngx_http_slora_engine_wake(ngx_http_slora_engine_ctx_t *ec);
static void ngx_http_slora_engine_stats(ngx_http_slora_engine_ctx_t *ec);
static void ngx_http_slora_engine_exit(ngx_http_slora_engine_ctx_t *ec,
    int status);


/*
 * Master-side state. The module's .so stays loaded across reloads (the
 * same path is dlopen'ed again), so these statics outlive a cycle: they
 * say which process slot holds the engine, which configuration it runs,
 * and which eventfds it and the workers share.
 */
static ngx_int_t   ngx_http_slora_engine_slot = -1;
static uint32_t    ngx_http_slora_engine_hash;
static int         ngx_http_slora_submit_fd = -1;
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

    old_sfd = ngx_http_slora_submit_fd;
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

    if (write(ngx_http_slora_submit_fd, &one, sizeof(one)) != sizeof(one)
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

    sfd = eventfd(0, EFD_NONBLOCK);
    if (sfd == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "slora: eventfd() failed");
        ngx_free(fds);
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        fds[i] = eventfd(0, EFD_NONBLOCK);

        if (fds[i] == -1) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                          "slora: eventfd() failed for slot %ui of %ui"
                          " (raise the open files limit or lower slots=)",
                          i, n);
            ngx_http_slora_close_fds(sfd, fds, i);
            return NGX_ERROR;
        }
    }

    ngx_http_slora_submit_fd = sfd;
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


static void
ngx_http_slora_engine_cycle(ngx_cycle_t *cycle, void *data)
{
    int                           timeout, rc, busy;
    int64_t                       t0;
    uint64_t                      v;
    struct pollfd                 pfd[3];
    ngx_http_slora_engine_ctx_t   ec;

    ngx_time_update();
    ngx_http_slora_engine_setup(cycle);

    ngx_memzero(&ec, sizeof(ec));
    ec.cycle = cycle;
    ec.smcf = ngx_http_cycle_get_module_main_conf(cycle,
                                                  ngx_http_slora_module);
    ec.q = ngx_http_slora_queue(ec.smcf);

    if (ec.q == NULL) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "slora engine: no shared zone");
        exit(2);
    }

    ec.n_slots = ec.q->geom.n_slots;
    ec.active = ngx_calloc(ec.n_slots * 3, cycle->log);
    ec.dirty_list = ngx_calloc(ec.n_slots * sizeof(uint32_t), cycle->log);

    if (ec.active == NULL || ec.dirty_list == NULL) {
        exit(2);
    }

    ec.cancelled = ec.active + ec.n_slots;
    ec.dirty = ec.cancelled + ec.n_slots;

    atomic_store(&ec.q->ready, 0);
    atomic_store(&ec.q->engine_pid, (int32_t) ngx_pid);
    atomic_store(&ec.q->heartbeat_ns, slora_now_ns());
    ec.epoch = atomic_fetch_add(&ec.q->epoch, 1) + 1;

    if (ec.epoch > 1) {
        atomic_fetch_add(&ec.q->restarts, 1);
    }

    ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                  "slora engine: started, epoch %uD", ec.epoch);

    ngx_http_slora_engine_reap(&ec);
    ngx_http_slora_engine_load(&ec);

    pfd[0].fd = ngx_http_slora_submit_fd;
    pfd[0].events = POLLIN;
    pfd[1].fd = ngx_channel;
    pfd[1].events = POLLIN;

    /*
     * The engine's wake fd: the catalog thread writes it when a request
     * that waited on Redis is resolved, so a step that returned
     * SLORA_AGAIN is retried then rather than in a busy loop.
     */
    pfd[2].fd = (ec.engine != NULL) ? slora_engine_wake_fd(ec.engine) : -1;
    pfd[2].events = POLLIN;

    busy = 0;

    for ( ;; ) {

        if (ngx_terminate) {
            ngx_http_slora_engine_exit(&ec, 0);
        }

        if (ngx_quit) {
            ec.quitting = 1;
        }

        if (ec.quitting && ec.n_active == 0) {
            ngx_http_slora_engine_take(&ec);

            if (ec.n_active == 0) {
                ngx_http_slora_engine_exit(&ec, 0);
            }
        }

        timeout = (ec.n_active && busy) ? 0 : (ec.quitting ? 100 : 1000);

        if (ec.engine == NULL) {
            timeout = 1000;
        }

        if (poll(pfd, 3, timeout) == -1 && ngx_errno != NGX_EINTR) {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                          "slora engine: poll() failed");
            ngx_http_slora_engine_exit(&ec, 2);
        }

        ngx_time_update();

        if (pfd[1].revents) {
            ngx_http_slora_engine_channel(&ec);
        }

        if (pfd[0].revents & POLLIN) {
            while (read(ngx_http_slora_submit_fd, &v, sizeof(v)) > 0) {
                /* drained */
            }
        }

        atomic_store(&ec.q->heartbeat_ns, slora_now_ns());

        if (ec.engine == NULL) {
            continue;
        }

        if (ngx_http_slora_engine_take(&ec)) {
            busy = 1;
        }

        if (ec.n_active) {
            t0 = slora_now_ns();
            rc = slora_engine_step(ec.engine, ngx_http_slora_engine_event,
                                   &ec);

            if (rc == SLORA_ERROR) {
                ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                              "slora engine: step failed, exiting to be"
                              " respawned");
                ngx_http_slora_engine_exit(&ec, 2);
            }

            if (rc == SLORA_OK) {
                slora_hist_observe(&ec.q->step_seconds,
                                   (slora_now_ns() - t0) / 1e9);
            }

            busy = (rc == SLORA_OK);

            ngx_http_slora_engine_wake(&ec);
            ngx_http_slora_engine_stats(&ec);
        }
    }
}


static void
ngx_http_slora_engine_setup(ngx_cycle_t *cycle)
{
    sigset_t          set;
    ngx_int_t         n;
    ngx_uint_t        i;
    ngx_listening_t  *ls;
    ngx_core_conf_t  *ccf;

    ngx_process = NGX_PROCESS_HELPER;

    sigemptyset(&set);
    if (sigprocmask(SIG_SETMASK, &set, NULL) == -1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "slora engine: sigprocmask() failed");
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


static void
ngx_http_slora_engine_load(ngx_http_slora_engine_ctx_t *ec)
{
    char                        *model, *adir;
    int32_t                      n, n_ctx;
    const char                 **names;
    slora_err_t                  err;
    slora_engine_conf_t          conf;
    ngx_http_slora_main_conf_t  *smcf;
    const slora_model_config_t  *mc;

    smcf = ec->smcf;

    model = ngx_alloc(smcf->model.len + 1, ec->cycle->log);
    adir = ngx_alloc(smcf->adapter_dir.len + 1, ec->cycle->log);
    if (model == NULL || adir == NULL) {
        exit(2);
    }

    ngx_memcpy(model, smcf->model.data, smcf->model.len);
    model[smcf->model.len] = '\0';
    ngx_memcpy(adir, smcf->adapter_dir.data, smcf->adapter_dir.len);
    adir[smcf->adapter_dir.len] = '\0';

    ngx_memzero(&conf, sizeof(conf));
    conf.model_path = model;
    conf.adapter_dir = smcf->adapter_dir.len ? adir : NULL;
    conf.device = "cpu";
    conf.weights = (smcf->weights.len == 3) ? "f32" : "q8_0";
    conf.n_threads = (int32_t) smcf->threads;
    conf.pool_bytes = smcf->pool;
    conf.host_cache_bytes = smcf->host_cache;
    conf.max_batch_tokens = (int32_t) smcf->max_batch_tokens;
    conf.max_running = (int32_t) smcf->max_running;
    conf.max_ctx = (int32_t) smcf->max_ctx;
    conf.max_waiting = (int32_t) smcf->slots;

    err.msg[0] = '\0';
    ec->engine = slora_engine_init(&conf, &err);
    ngx_time_update();

    if (ec->engine == NULL) {
        ngx_log_error(NGX_LOG_EMERG, ec->cycle->log, 0,
                      "slora engine: cannot load \"%s\": %s", model,
                      err.msg);
        ngx_cpystrn((u_char *) ec->q->engine_err, (u_char *) err.msg,
                    sizeof(ec->q->engine_err));
        return;
    }

    mc = slora_engine_model_config(ec->engine);
    n_ctx = (int32_t) smcf->max_ctx;

    if (mc->max_ctx > 0 && mc->max_ctx < n_ctx) {
        n_ctx = mc->max_ctx;
    }

    atomic_store(&ec->q->n_ctx, n_ctx);

    n = slora_engine_adapters(ec->engine, &names);

    if (slora_queue_set_names(ec->q, names, n > 0 ? (uint32_t) n : 0, &err)
        != SLORA_OK)
    {
        ngx_log_error(NGX_LOG_WARN, ec->cycle->log, 0,
                      "slora engine: %s", err.msg);
    }

    ec->q->engine_err[0] = '\0';
    ngx_http_slora_engine_stats(ec);
    atomic_store_explicit(&ec->q->ready, 1, memory_order_release);

    ngx_log_error(NGX_LOG_NOTICE, ec->cycle->log, 0,
                  "slora engine: ready: model \"%s\" (%s, %d layers,"
                  " context %d), %d adapters", model, mc->name,
                  mc->n_layers, n_ctx, n);
}


/* Fails what a dead engine of an earlier epoch left in flight. */
static void
ngx_http_slora_engine_reap(ngx_http_slora_engine_ctx_t *ec)
{
    uint32_t       i, st, failed;
    slora_slot_t  *s;

    failed = 0;

    for (i = 0; i < ec->n_slots; i++) {
        s = slora_queue_slot(ec->q, i);

        if (!(atomic_load(&s->refs) & SLORA_REF_ENGINE)) {
            continue;
        }

        st = atomic_load_explicit(&s->state, memory_order_acquire);

        if (st == SLORA_SLOT_SUBMITTED || st == SLORA_SLOT_RUNNING) {
            slora_queue_fail(ec->q, i, NGX_HTTP_SERVICE_UNAVAILABLE,
                             "the engine restarted and the request was"
                             " lost; retry it");
            ngx_http_slora_engine_mark(ec, i);
            failed++;

        } else if (st == SLORA_SLOT_FINISHED || st == SLORA_SLOT_FAILED) {
            slora_queue_release(ec->q, i, SLORA_REF_ENGINE);
            ngx_http_slora_engine_mark(ec, i);
        }
    }

    if (failed) {
        ngx_log_error(NGX_LOG_WARN, ec->cycle->log, 0,
                      "slora engine: failed %uD requests of the previous"
                      " engine", failed);
    }

    ngx_http_slora_engine_wake(ec);
}


static void
ngx_http_slora_engine_channel(ngx_http_slora_engine_ctx_t *ec)
{
    ngx_int_t      n;
    ngx_channel_t  ch;

    for ( ;; ) {
        n = ngx_read_channel(ngx_channel, &ch, sizeof(ngx_channel_t),
                             ec->cycle->log);

        if (n == NGX_AGAIN) {
            return;
        }

        if (n == NGX_ERROR) {
            /* the master is gone */
            ngx_http_slora_engine_exit(ec, 0);
        }

        switch (ch.command) {

        case NGX_CMD_QUIT:
            ngx_log_error(NGX_LOG_NOTICE, ec->cycle->log, 0,
                          "slora engine: quitting after %uD running"
                          " requests", ec->n_active);
            ec->quitting = 1;
            break;

        case NGX_CMD_TERMINATE:
            ngx_http_slora_engine_exit(ec, 0);
            break;

        case NGX_CMD_OPEN_CHANNEL:
            if (ch.fd != -1) {
                close(ch.fd);
            }
            break;

        default:
            break;
        }
    }
}


/* Returns how many requests it submitted or cancelled. */

static ngx_uint_t
ngx_http_slora_engine_take(ngx_http_slora_engine_ctx_t *ec)
{
    uint32_t       i, gen;
    ngx_uint_t     n;
    slora_slot_t  *s;

    n = 0;

    while (slora_ring_pop(slora_queue_ring(ec->q), &i, &gen) == SLORA_OK) {
        if (i >= ec->n_slots) {
            continue;
        }

        s = slora_queue_slot(ec->q, i);

        if (s->gen != gen
            || atomic_load_explicit(&s->state, memory_order_acquire)
               != SLORA_SLOT_SUBMITTED)
        {
            continue;
        }

        ngx_http_slora_engine_submit(ec, i);
        n++;
    }

    /* cancellations of running requests */
    for (i = 0; ec->n_active && i < ec->n_slots; i++) {
        if (!ec->active[i] || ec->cancelled[i]) {
            continue;
        }

        s = slora_queue_slot(ec->q, i);

        if (atomic_load(&s->cancel)) {
            ec->cancelled[i] = 1;
            slora_engine_cancel(ec->engine, ((uint64_t) s->gen << 32) | i);
            n++;
        }
    }

    return n;
}


static void
ngx_http_slora_engine_submit(ngx_http_slora_engine_ctx_t *ec, uint32_t i)
{
    int               rc;
    slora_err_t       err;
    slora_slot_t     *s;
    slora_request_t   req;

    s = slora_queue_slot(ec->q, i);

    if (atomic_load(&s->cancel)) {
        slora_queue_finish(ec->q, i, SLORA_FINISH_CANCEL);
        ngx_http_slora_engine_mark(ec, i);
        return;
    }

    if (s->n_prompt <= 0 || (uint32_t) s->n_prompt > ec->q->geom.prompt_cap
        || s->max_tokens <= 0
        || (uint32_t) s->max_tokens > ec->q->geom.output_cap
        || s->n_stop_ids < 0 || s->n_stop_ids > SLORA_QUEUE_STOP_IDS)
    {
        slora_queue_fail(ec->q, i, NGX_HTTP_BAD_REQUEST,
                         "request slot holds invalid sizes");
        ngx_http_slora_engine_mark(ec, i);
        return;
    }

    s->adapter[SLORA_QUEUE_ADAPTER_LEN - 1] = '\0';

    ngx_memzero(&req, sizeof(req));
    req.id = ((uint64_t) s->gen << 32) | i;
    req.adapter = s->adapter[0] ? s->adapter : NULL;
    req.prompt = slora_queue_prompt(ec->q, i);
    req.n_prompt = s->n_prompt;
    req.stop_ids = s->stop_ids;
    req.n_stop_ids = s->n_stop_ids;
    req.sampling.temperature = s->temperature;
    req.sampling.top_k = s->top_k;
    req.sampling.top_p = s->top_p;
    req.sampling.repeat_penalty = s->repeat_penalty;
    req.sampling.seed = s->seed;
    req.sampling.max_tokens = s->max_tokens;

    err.msg[0] = '\0';
    rc = slora_engine_submit(ec->engine, &req, &err);

    switch (rc) {

    case SLORA_OK:
        s->epoch = ec->epoch;
        s->t_start_ns = slora_now_ns();
        atomic_store_explicit(&s->state, SLORA_SLOT_RUNNING,
                              memory_order_release);
        ec->active[i] = 1;
        ec->cancelled[i] = 0;
        ec->n_active++;
        return;

    case SLORA_BUSY:
        slora_queue_fail(ec->q, i, NGX_HTTP_TOO_MANY_REQUESTS,
                         "the engine's queue is full");
        break;

    case SLORA_DECLINED:
        slora_queue_fail(ec->q, i, NGX_HTTP_NOT_FOUND,
                         err.msg[0] ? err.msg : "unknown adapter");
        break;

    default:
        slora_queue_fail(ec->q, i, NGX_HTTP_BAD_REQUEST,
                         err.msg[0] ? err.msg : "the engine refused the"
                                                " request");
        break;
    }

    ngx_http_slora_engine_mark(ec, i);
}


static void
ngx_http_slora_engine_event(void *data, const slora_event_t *ev)
{
    ngx_http_slora_engine_ctx_t  *ec = data;

    uint32_t       i;
    slora_slot_t  *s;

    i = (uint32_t) (ev->id & 0xffffffff);

    if (i >= ec->n_slots || !ec->active[i]) {
        return;
    }

    s = slora_queue_slot(ec->q, i);

    if (s->gen != (uint32_t) (ev->id >> 32)) {
        return;
    }

    switch (ev->type) {

    case SLORA_EV_TOKEN:
        if (slora_queue_publish(ec->q, i, ev->token) != SLORA_OK
            && !ec->cancelled[i])
        {
            /* cannot happen: max_tokens <= output_cap was checked */
            ec->cancelled[i] = 1;
            slora_engine_cancel(ec->engine, ev->id);
        }
        break;

    case SLORA_EV_DONE:
        slora_queue_finish(ec->q, i, ev->finish);
        ec->active[i] = 0;
        ec->n_active--;
        break;

    case SLORA_EV_ERROR:
        slora_queue_fail(ec->q, i, NGX_HTTP_INTERNAL_SERVER_ERROR,
                         ev->error ? ev->error : "engine error");
        ec->active[i] = 0;
        ec->n_active--;
        break;
    }

    ngx_http_slora_engine_mark(ec, i);
}


static void
ngx_http_slora_engine_mark(ngx_http_slora_engine_ctx_t *ec, uint32_t i)
{
    if (!ec->dirty[i]) {
        ec->dirty[i] = 1;
        ec->dirty_list[ec->n_dirty++] = i;
    }
}


static void
ngx_http_slora_engine_wake(ngx_http_slora_engine_ctx_t *ec)
{
    uint32_t  k, i;
    uint64_t  one;

    one = 1;

    for (k = 0; k < ec->n_dirty; k++) {
        i = ec->dirty_list[k];
        ec->dirty[i] = 0;

        if (write(ngx_http_slora_slot_fds[i], &one, sizeof(one)) == -1
            && ngx_errno != NGX_EAGAIN)
        {
            ngx_log_error(NGX_LOG_ALERT, ec->cycle->log, ngx_errno,
                          "slora engine: write() to slot %uD eventfd"
                          " failed", i);
        }
    }

    ec->n_dirty = 0;
}


static void
ngx_http_slora_engine_stats(ngx_http_slora_engine_ctx_t *ec)
{
    slora_queue_t         *q;
    slora_engine_stats_t   st;

    q = ec->q;

    ngx_memzero(&st, sizeof(st));
    slora_engine_stats(ec->engine, &st);

    atomic_store_explicit(&q->waiting, st.waiting, memory_order_relaxed);
    atomic_store_explicit(&q->running, st.running, memory_order_relaxed);
    atomic_store_explicit(&q->pages_total, st.pages_total,
                          memory_order_relaxed);
    atomic_store_explicit(&q->pages_free, st.pages_free,
                          memory_order_relaxed);
    atomic_store_explicit(&q->pages_kv, st.pages_kv, memory_order_relaxed);
    atomic_store_explicit(&q->pages_adapter, st.pages_adapter,
                          memory_order_relaxed);
    atomic_store_explicit(&q->adapters_in_pool, st.adapters_in_pool,
                          memory_order_relaxed);
    atomic_store_explicit(&q->adapters_in_host, st.adapters_in_host,
                          memory_order_relaxed);
    atomic_store_explicit(&q->adapter_loads, st.adapter_loads,
                          memory_order_relaxed);
    atomic_store_explicit(&q->adapter_evictions, st.adapter_evictions,
                          memory_order_relaxed);
    atomic_store_explicit(&q->adapter_hits, st.adapter_hits,
                          memory_order_relaxed);
}


static void
ngx_http_slora_engine_exit(ngx_http_slora_engine_ctx_t *ec, int status)
{
    uint32_t  i;

    atomic_store(&ec->q->ready, 0);

    /* whatever still runs is lost with this process */
    for (i = 0; i < ec->n_slots; i++) {
        if (ec->active[i]) {
            slora_queue_fail(ec->q, i, NGX_HTTP_SERVICE_UNAVAILABLE,
                             "the engine is shutting down");
            ngx_http_slora_engine_mark(ec, i);
        }
    }

    ngx_http_slora_engine_wake(ec);

    if (ec->engine) {
        slora_engine_free(ec->engine);
    }

    ngx_log_error(NGX_LOG_NOTICE, ec->cycle->log, 0,
                  "slora engine: exit");

    exit(status);
}
