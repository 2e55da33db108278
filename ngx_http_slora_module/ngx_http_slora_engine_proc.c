/*
 * ngx_http_slora_engine_proc.c: the engine process. The master spawns it
 * from init_module and respawns it when it dies; it owns the model (the
 * engine library, engine/slora_engine.h) and talks to workers only through
 * the shared zone and the eventfds the master made before any fork.
 *
 * The one idea is the loop: poll the submission eventfd and the master's
 * channel (with a zero timeout while requests run), drain the ring into
 * slora_engine_submit(), run one slora_engine_step(), publish each token
 * into its slot with a release store, then write the eventfd of every slot
 * that changed, once per step. A worker never waits on the engine and the
 * engine never waits on a worker: output buffers hold max_tokens.
 *
 * Requests that are not generations (slot->op: the model list of a
 * tenant, the admin operations on adapters and on the prefix cache) are
 * answered here, on the engine's thread, into the slot's prompt buffer;
 * one whose catalog entry is still being read from Redis waits in the
 * pending set and is retried after every step, which runs whenever the
 * engine's wake fd says the catalog has news. So does a generation whose
 * constraint the engine compiles on its compile thread
 * (slora_engine_schema_ready), so that no compile holds this loop. An
 * engine error becomes an HTTP status and an OpenAI error code in the
 * slot (ngx_http_slora_engine_fail), so the worker answers 403, 404 or
 * 503 for what the engine found at resolution.
 *
 * The engine reads its channel (QUIT drains running requests, TERMINATE
 * exits, REOPEN reopens the logs), updates nginx's clock, looks at the
 * adapter folder every second, and bumps the zone's epoch so that slots
 * a dead predecessor was running are failed instead of left hanging;
 * every second it also takes back the slots of workers that died, and
 * a model that did not load is tried again (those three, and the load,
 * are ngx_http_slora_engine_load.c's). The master's side and the
 * process's setup are in ngx_http_slora_engine_spawn.c.
 */

#include "ngx_http_slora_module.h"
#include <ngx_channel.h>
#include <poll.h>

#include "ngx_http_slora_engine_int.h"
#include "ngx_http_slora_text.h"
#include "slora_json.h"


/* a slot's logit_bias and allowed_token_ids fit the engine's request */
_Static_assert(SLORA_QUEUE_BIAS_MAX <= SLORA_LOGIT_BIAS_MAX,
               "logit_bias: the request holds fewer entries than a slot");
_Static_assert(SLORA_QUEUE_ALLOWED_MAX <= SLORA_ALLOWED_MAX,
               "allowed_token_ids: the request holds fewer than a slot");
_Static_assert(SLORA_QUEUE_BAD_MAX <= SLORA_BAD_MAX,
               "bad_words: the request holds fewer runs than a slot");


#define NGX_HTTP_SLORA_STATS_NS       (250 * 1000000LL)
#define NGX_HTTP_SLORA_REFRESH_NS     (1000 * 1000000LL)
/* how long after a reload's master copied the zone's registrations the
 * old engine refuses new ones: it is told to quit well within it, and a
 * reload that failed after the copy lets them through again after */
#define NGX_HTTP_SLORA_COPIED_NS      (5000 * 1000000LL)
#define NGX_HTTP_SLORA_STEP_FAILURES  3   /* in a row: respawn */
#define NGX_HTTP_SLORA_POLL_FAILURES  100 /* in a row, 10 ms apart:
                                             respawn */
#define NGX_HTTP_SLORA_LIST_REC_MIN   89  /* the shortest record of the
                                             adapter list: a one-letter
                                             name, one-digit numbers */

/* a refusal's time to ask again, in Retry-After's whole seconds, up */
#define ngx_http_slora_retry_s(ms)    (((ms) + 999) / 1000)


static void ngx_http_slora_engine_channel(ngx_http_slora_engine_ctx_t *ec);
static void ngx_http_slora_engine_refresh(ngx_http_slora_engine_ctx_t *ec);
static void ngx_http_slora_engine_check_files(
    ngx_http_slora_engine_ctx_t *ec);
static ngx_uint_t ngx_http_slora_engine_take(
    ngx_http_slora_engine_ctx_t *ec);
static void ngx_http_slora_engine_submit(ngx_http_slora_engine_ctx_t *ec,
    uint32_t i);
static void ngx_http_slora_engine_fail(ngx_http_slora_engine_ctx_t *ec,
    uint32_t i, slora_errcode_e code, const char *msg);
static void ngx_http_slora_engine_op(ngx_http_slora_engine_ctx_t *ec,
    uint32_t i);
static void ngx_http_slora_engine_retry(ngx_http_slora_engine_ctx_t *ec);
static int ngx_http_slora_engine_models(ngx_http_slora_engine_ctx_t *ec,
    slora_slot_t *s, u_char *buf, size_t cap, slora_err_t *err);
static int ngx_http_slora_engine_list(ngx_http_slora_engine_ctx_t *ec,
    slora_slot_t *s, u_char *buf, size_t cap, slora_err_t *err);
static int ngx_http_slora_engine_flush(ngx_http_slora_engine_ctx_t *ec,
    slora_slot_t *s, u_char *buf, size_t cap, slora_err_t *err);
static ngx_uint_t ngx_http_slora_engine_put(slora_slot_t *s, u_char *buf,
    size_t cap, const u_char *rec, size_t len, const char *name);
static void ngx_http_slora_engine_event(void *data,
    const slora_event_t *ev);
static void ngx_http_slora_engine_exit(ngx_http_slora_engine_ctx_t *ec,
    int status);


void
ngx_http_slora_engine_cycle(ngx_cycle_t *cycle, void *data)
{
    int                           timeout, rc, busy, wake;
    uint32_t                      was_active, retried;
    ngx_uint_t                    failures, poll_failures;
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
    ec.redis = ec.smcf->redis_url.len > 0;
    ec.active = ngx_calloc(ec.n_slots * 5, cycle->log);
    ec.dirty_list = ngx_calloc(ec.n_slots * sizeof(uint32_t), cycle->log);
    ec.recover.marks = ngx_calloc(ec.n_slots * sizeof(uint32_t),
                                  cycle->log);

    if (ec.active == NULL || ec.dirty_list == NULL
        || ec.recover.marks == NULL)
    {
        exit(2);
    }

    ec.held = ec.active + 4 * ec.n_slots;

    ec.cancelled = ec.active + ec.n_slots;
    ec.dirty = ec.cancelled + ec.n_slots;
    ec.pending = ec.dirty + ec.n_slots;

    atomic_store(&ec.q->ready, 0);
    ec.q->engine_err[0] = '\0';
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

    pfd[0].fd = ngx_http_slora_submit_fd();
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
    failures = 0;
    poll_failures = 0;

    for ( ;; ) {

        if (ngx_terminate) {
            ngx_http_slora_engine_exit(&ec, 0);
        }

        if (ngx_quit) {
            ec.quitting = 1;
        }

        if (ec.quitting && ec.n_active == 0 && ec.n_pending == 0) {
            ngx_http_slora_engine_take(&ec);

            if (ec.n_active == 0 && ec.n_pending == 0) {
                ngx_http_slora_engine_exit(&ec, 0);
            }
        }

        timeout = ((ec.n_active || ec.n_pending) && busy)
                  ? 0 : (ec.quitting ? 100 : 1000);

        if (ec.engine == NULL) {
            timeout = 1000;
        }

        /*
         * poll() fails on a kernel short of memory or a file limit
         * lowered under the process: the requests in flight are kept
         * while it passes, and past a second a fresh process is tried
         * (status 1: nginx respawns nothing that exits with 2)
         */
        if (poll(pfd, 3, timeout) == -1 && ngx_errno != NGX_EINTR) {
            if (poll_failures++ == 0) {
                ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                              "slora engine: poll() failed, trying again");
            }

            if (poll_failures >= NGX_HTTP_SLORA_POLL_FAILURES) {
                ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                              "slora engine: poll() failed for a second,"
                              " exiting to be respawned");
                ngx_http_slora_engine_exit(&ec, 1);
            }

            ngx_msleep(10);
            continue;
        }

        if (poll_failures) {
            ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                          "slora engine: poll() works again after %ui"
                          " failures", poll_failures);
            poll_failures = 0;
        }

        ngx_time_update();

        if (pfd[1].revents) {
            ngx_http_slora_engine_channel(&ec);
        }

        if (pfd[0].revents & POLLIN) {
            while (read(pfd[0].fd, &v, sizeof(v)) > 0) {
                /* drained */
            }
        }

        atomic_store(&ec.q->heartbeat_ns, slora_now_ns());

        if (ec.engine == NULL) {
            /* a load that failed is tried again: what it lacked (GPU
             * memory an engine of the old binary still holds, a file
             * being copied) may have come */
            if (!ec.quitting
                && slora_now_ns() - ec.load_ns >= ec.load_wait_ns)
            {
                ngx_http_slora_engine_load(&ec);

                if (ec.engine != NULL) {
                    pfd[2].fd = slora_engine_wake_fd(ec.engine);
                }
            }

            continue;
        }

        if (ngx_http_slora_engine_take(&ec)) {
            busy = 1;
        }

        /* the catalog's news is read by a step even when idle, or the
         * readable wake fd would keep poll() from ever sleeping */
        wake = (pfd[2].revents & POLLIN) != 0;

        was_active = ec.n_active;

        if (ec.n_active || ec.n_pending || wake) {
            t0 = slora_now_ns();
            rc = slora_engine_step(ec.engine, ngx_http_slora_engine_event,
                                   &ec);

            /*
             * A failed step has already failed its own requests, and the
             * rest go on; a lost device, or steps that keep failing,
             * need a new engine process (exit status 1: nginx never
             * respawns a process that exits with 2)
             */
            if (rc == SLORA_FATAL) {
                ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                              "slora engine: the backend cannot go on, "
                              "exiting to be respawned");

                /* not freed: that would call into the lost device (a
                 * communicator's teardown can wait on it); the exit
                 * reclaims the process's memory and the GPU's context */
                ec.engine = NULL;
                ngx_http_slora_engine_exit(&ec, 1);
            }

            if (rc == SLORA_ERROR) {
                failures++;

                if (failures >= NGX_HTTP_SLORA_STEP_FAILURES) {
                    ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                                  "slora engine: %ui steps failed in a row,"
                                  " exiting to be respawned", failures);
                    ngx_http_slora_engine_exit(&ec, 1);
                }

                ngx_log_error(NGX_LOG_ERR, cycle->log, 0,
                              "slora engine: step failed, its requests "
                              "were ended");

            } else {
                failures = 0;
            }

            if (rc == SLORA_OK) {
                slora_hist_observe(&ec.q->step_seconds,
                                   (slora_now_ns() - t0) / 1e9);
            }

            busy = (rc == SLORA_OK);

            if (ec.n_pending) {
                retried = ec.n_active;
                ngx_http_slora_engine_retry(&ec);

                /* a generation whose compile was done is in the engine
                 * now: step it at once, not after poll's second */
                if (ec.n_active > retried) {
                    busy = 1;
                }
            }
        }

        if (slora_now_ns() - ec.refresh_ns >= NGX_HTTP_SLORA_REFRESH_NS) {
            ngx_http_slora_engine_refresh(&ec);
            ngx_http_slora_engine_check_files(&ec);
            ngx_http_slora_engine_orphans(&ec);
        }

        /* before the workers learn of a request's end, so a client that
         * asks /status right after its answer sees it gone */
        if (ec.n_active || was_active
            || slora_now_ns() - ec.stats_ns >= NGX_HTTP_SLORA_STATS_NS)
        {
            ngx_http_slora_engine_stats(&ec);
        }

        ngx_http_slora_engine_wake(&ec);
    }
}


/*
 * The adapter folder, looked at again (a stat, every second and before a
 * model list): where adapters were added, removed or replaced, the names
 * the workers hold are stale, and they ask the engine from then on.
 */
static void
ngx_http_slora_engine_refresh(ngx_http_slora_engine_ctx_t *ec)
{
    int           rc;
    int32_t       n;
    slora_err_t   err;
    const char  **names;

    ec->refresh_ns = slora_now_ns();
    err.msg[0] = '\0';

    rc = slora_engine_refresh_adapters(ec->engine, &err);

    if (rc == SLORA_ERROR) {
        if (!ec->refresh_failed) {
            ngx_log_error(NGX_LOG_WARN, ec->cycle->log, 0,
                          "slora engine: %s; serving the adapters read"
                          " before", err.msg);
            ec->refresh_failed = 1;
        }

        return;
    }

    ec->refresh_failed = 0;

    if (rc == 1) {
        n = slora_engine_adapters(ec->engine, &names);
        slora_queue_names_stale(ec->q);

        ngx_log_error(NGX_LOG_NOTICE, ec->cycle->log, 0,
                      "slora engine: the adapter folder changed: %D"
                      " adapters now", n);
    }
}


/* Every second: adapters' files rewritten in place (no name changes). */
static void
ngx_http_slora_engine_check_files(ngx_http_slora_engine_ctx_t *ec)
{
    int32_t      rewritten;
    const char  *name;

    rewritten = slora_engine_check_files(ec->engine, &name);

    if (rewritten > 0) {
        ngx_log_error(NGX_LOG_NOTICE, ec->cycle->log, 0,
                      "slora engine: the files of adapter \"%s\"%s were"
                      " rewritten in place: read again at its next use",
                      name, rewritten > 1 ? " and others" : "");
    }
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

        case NGX_CMD_REOPEN:
            /* USR1 (logrotate): the error log, and stderr with it, as a
             * worker reopens them; the master made the new files the
             * workers' user's, which the engine runs as */
            ngx_log_error(NGX_LOG_NOTICE, ec->cycle->log, 0,
                          "slora engine: reopening logs");
            ngx_reopen_files(ec->cycle, (ngx_uid_t) -1);
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
    int               rc, ready;
    slora_err_t       err;
    slora_slot_t     *s;
    slora_request_t   req;

    s = slora_queue_slot(ec->q, i);

    /* a generation out of the pending set, where it waited on its
     * compile; back in it below while it still does (an op comes here
     * only fresh from the ring) */
    if (ec->pending[i]) {
        ec->pending[i] = 0;
        ec->n_pending--;
    }

    if (atomic_load(&s->cancel)) {
        slora_queue_finish(ec->q, i, SLORA_FINISH_CANCEL);
        ngx_http_slora_engine_mark(ec, i);
        return;
    }

    if (s->op != SLORA_OP_GENERATE) {
        ngx_http_slora_engine_op(ec, i);
        return;
    }

    if (s->n_prompt <= 0 || (uint32_t) s->n_prompt > ec->q->geom.prompt_cap
        || s->n_prediction < 0
        || (uint32_t) s->n_prediction > ec->q->geom.prompt_cap
                                        - (uint32_t) s->n_prompt
        || s->prompt_logprobs < -1
        || s->prompt_logprobs > (int32_t) ec->q->geom.top_cap
        || s->max_tokens < (s->prompt_logprobs >= 0 ? 0 : 1)
        || (uint32_t) s->max_tokens > ec->q->geom.output_cap
        || s->n_stop_ids < 0 || s->n_stop_ids > SLORA_QUEUE_STOP_IDS
        || s->logprobs < -1 || s->logprobs > (int32_t) ec->q->geom.top_cap
        || s->n_logit_bias < 0 || s->n_logit_bias > SLORA_QUEUE_BIAS_MAX
        || s->n_allowed < 0 || s->n_allowed > SLORA_QUEUE_ALLOWED_MAX
        || s->n_bad < 0 || s->n_bad > SLORA_QUEUE_BAD_MAX
        || s->schema_len > SLORA_QUEUE_SCHEMA_LEN
        || s->trigger_len > SLORA_QUEUE_SCHEMA_LEN - s->schema_len
        || (s->trigger_len > 0 && s->schema_len == 0)
        || (s->trigger_lead != 0 && s->trigger_len == 0)
        || s->gate_len > SLORA_QUEUE_SCHEMA_LEN - s->schema_len
                         - s->trigger_len
        || (s->gate_len > 0 && s->trigger_len == 0
            && s->schema_form != SLORA_JSON_FORM_TAGS)
        || s->trigger_lead < 0 || s->trigger_lead > SLORA_TRIGGER_ENDS
        || s->schema_form < SLORA_JSON_FORM_SCHEMA
        || s->schema_form > SLORA_JSON_FORM_TAGS
        || s->json_compact < 0 || s->json_compact > 1)
    {
        slora_queue_fail(ec->q, i, NGX_HTTP_BAD_REQUEST,
                         "request slot holds invalid sizes");
        ngx_http_slora_engine_mark(ec, i);
        return;
    }

    s->adapter[SLORA_QUEUE_ADAPTER_LEN - 1] = '\0';
    s->tenant[SLORA_QUEUE_TENANT_LEN - 1] = '\0';

    /* a constraint the engine does not keep compiled is compiled on its
     * compile thread, not on this loop: the slot waits in the pending
     * set, retried after each step (the thread wakes the engine) */
    ready = s->schema_len == 0
            || slora_engine_schema_ready(ec->engine, s->schema_form,
                                         slora_queue_schema(ec->q, i),
                                         s->schema_len);

    if (!ready) {
        ec->pending[i] = 1;
        ec->n_pending++;
        return;
    }

    ngx_memzero(&req, sizeof(req));
    req.id = ((uint64_t) s->gen << 32) | i;
    req.adapter = s->adapter[0] ? s->adapter : NULL;
    req.tenant = s->tenant[0] ? s->tenant : NULL;
    req.cache_salt[0] = s->cache_salt[0];
    req.cache_salt[1] = s->cache_salt[1];
    req.rate_free = s->rate_free != 0;
    req.prompt = slora_queue_prompt(ec->q, i);
    req.n_prompt = s->n_prompt;
    req.prediction = req.prompt + s->n_prompt;
    req.n_prediction = s->n_prediction;
    req.stop_ids = s->stop_ids;
    req.n_stop_ids = s->n_stop_ids;
    req.sampling.temperature = s->temperature;
    req.sampling.top_k = s->top_k;
    req.sampling.top_p = s->top_p;
    req.sampling.min_p = s->min_p;
    req.sampling.repeat_penalty = s->repeat_penalty;
    req.sampling.frequency_penalty = s->frequency_penalty;
    req.sampling.presence_penalty = s->presence_penalty;
    req.sampling.json = s->json;
    req.json_compact = s->json_compact;

    if (s->schema_len) {
        req.json_schema = slora_queue_schema(ec->q, i);
        req.json_schema_len = s->schema_len;
        req.json_form = s->schema_form;

        if (s->trigger_len) {
            req.json_trigger = slora_queue_schema(ec->q, i) + s->schema_len;
            req.json_trigger_len = s->trigger_len;
            req.json_trigger_lead = s->trigger_lead;
        }

        /* the gate of the trigger, or of a structural tag's own */
        if (s->gate_len) {
            req.json_gate = slora_queue_schema(ec->q, i) + s->schema_len
                            + s->trigger_len;
            req.json_gate_len = s->gate_len;
        }
    }

    req.sampling.n_logit_bias = s->n_logit_bias;
    ngx_memcpy(req.sampling.logit_bias_ids, s->logit_bias_ids,
               s->n_logit_bias * sizeof(int32_t));
    ngx_memcpy(req.sampling.logit_bias, s->logit_bias,
               s->n_logit_bias * sizeof(float));
    req.sampling.n_allowed = s->n_allowed;
    ngx_memcpy(req.sampling.allowed_ids, s->allowed_ids,
               s->n_allowed * sizeof(int32_t));
    req.sampling.n_bad = s->n_bad;
    ngx_memcpy(req.sampling.bad_ids, s->bad_ids,
               s->n_bad * sizeof(int32_t));
    req.logprobs = s->logprobs >= 0;
    req.top_logprobs = s->logprobs >= 0 ? s->logprobs : 0;
    req.prompt_logprobs = s->prompt_logprobs >= 0;
    req.prompt_top = s->prompt_logprobs >= 0 ? s->prompt_logprobs : 0;
    req.sampling.seed = s->seed;
    req.sampling.max_tokens = s->max_tokens;
    req.sampling.min_tokens = s->min_tokens;
    req.arrived_ns = s->t_submit_ns;

    err.msg[0] = '\0';
    err.retry_ms = 0;
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
        ngx_http_slora_engine_fail(ec, i, SLORA_ERRCODE_BUSY,
                                   "the engine's queue is full");
        break;

    default:
        /* before the slot is failed: the worker reads it then */
        s->retry_after = ngx_http_slora_retry_s(err.retry_ms);
        ngx_http_slora_engine_fail(ec, i, slora_engine_errcode(rc),
                                   err.msg[0] ? err.msg
                                   : "the engine refused the request");
        break;
    }
}


/*
 * Fails slot i with the HTTP status and OpenAI code of an engine error:
 * NOT_FOUND 404, FORBIDDEN 403 (adapter_not_allowed, unknown_tenant),
 * BUSY 429, SLO 429 (slo_unattainable), UNAVAILABLE 503, BAD_REQUEST 400,
 * INTERNAL 500.
 */
static void
ngx_http_slora_engine_fail(ngx_http_slora_engine_ctx_t *ec, uint32_t i,
    slora_errcode_e code, const char *msg)
{
    int32_t        status;
    const char    *name, *p;
    slora_slot_t  *s;

    switch (code) {

    case SLORA_ERRCODE_BAD_REQUEST:
        status = NGX_HTTP_BAD_REQUEST;
        name = "invalid_value";
        break;

    case SLORA_ERRCODE_NOT_FOUND:
        status = NGX_HTTP_NOT_FOUND;
        name = "model_not_found";
        break;

    case SLORA_ERRCODE_FORBIDDEN:
        status = NGX_HTTP_FORBIDDEN;
        name = ngx_strstr(msg, "not allowed") ? "adapter_not_allowed"
                                              : "unknown_tenant";
        break;

    case SLORA_ERRCODE_BUSY:
        status = NGX_HTTP_TOO_MANY_REQUESTS;
        name = "rate_limit_exceeded";
        break;

    case SLORA_ERRCODE_SLO:
        status = NGX_HTTP_TOO_MANY_REQUESTS;
        name = "slo_unattainable";
        break;

    case SLORA_ERRCODE_RATE:
        status = NGX_HTTP_TOO_MANY_REQUESTS;
        name = "rate_limit_exceeded";
        break;

    case SLORA_ERRCODE_UNAVAILABLE:
        status = NGX_HTTP_SERVICE_UNAVAILABLE;
        name = "catalog_unavailable";
        break;

    default:
        status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        name = "engine_error";
        break;
    }

    /* "request N: " names the engine's id, which the client never saw */
    if (ngx_strncmp(msg, "request ", 8) == 0) {
        p = msg + 8;
        while (*p >= '0' && *p <= '9') {
            p++;
        }

        if (p > msg + 8 && p[0] == ':' && p[1] == ' ') {
            msg = p + 2;
        }
    }

    s = slora_queue_slot(ec->q, i);
    ngx_cpystrn((u_char *) s->err_code, (u_char *) name,
                sizeof(s->err_code));

    slora_queue_fail(ec->q, i, status, msg);
    ngx_http_slora_engine_mark(ec, i);
}


/* Answers an op slot now, or parks it in the pending set. */
static void
ngx_http_slora_engine_op(ngx_http_slora_engine_ctx_t *ec, uint32_t i)
{
    int              rc;
    size_t           cap;
    u_char          *buf;
    slora_err_t      err;
    slora_slot_t    *s;
    slora_engine_t  *e;

    e = ec->engine;
    s = slora_queue_slot(ec->q, i);
    s->adapter[SLORA_QUEUE_ADAPTER_LEN - 1] = '\0';
    s->tenant[SLORA_QUEUE_TENANT_LEN - 1] = '\0';

    buf = (u_char *) slora_queue_prompt(ec->q, i);
    cap = (size_t) ec->q->geom.prompt_cap * sizeof(int32_t);

    err.code = SLORA_OK;
    err.msg[0] = '\0';

    switch (s->op) {

    case SLORA_OP_MODELS:
        rc = ngx_http_slora_engine_models(ec, s, buf, cap, &err);
        break;

    case SLORA_OP_ADAPTERS:
        rc = ngx_http_slora_engine_list(ec, s, buf, cap, &err);
        break;

    case SLORA_OP_LOAD:
        rc = slora_engine_adapter_load(e, s->adapter, &err);
        break;

    case SLORA_OP_UNLOAD:
        rc = slora_engine_adapter_unload(e, s->adapter, &err);
        break;

    case SLORA_OP_PIN:
        rc = slora_engine_adapter_pin(e, s->adapter, &err);
        break;

    case SLORA_OP_UNPIN:
        rc = slora_engine_adapter_unpin(e, s->adapter, &err);
        break;

    case SLORA_OP_PREFIX_FLUSH:
        rc = ngx_http_slora_engine_flush(ec, s, buf, cap, &err);
        break;

    case SLORA_OP_REGISTER:
    case SLORA_OP_REPLACE:
    case SLORA_OP_DEREGISTER:
        if ((!ec->pending[i] || !ec->redis)
            && (ec->quitting
                || (!ec->redis
                    && slora_now_ns()
                       - atomic_load(&ec->q->registry_copied_ns)
                       < NGX_HTTP_SLORA_COPIED_NS)))
        {
            /*
             * A reload's new engine starts from the registrations the
             * zone held when its master copied them: one taken here
             * since would be lost; the worker's word for a reload. So
             * is one pending while its folder is read (nothing taken
             * yet); with Redis a pending op's write may be out, and
             * Redis keeps what it takes for every engine.
             */
            if (ec->pending[i]) {
                ngx_http_slora_engine_abandon(ec, i, s);
                ec->pending[i] = 0;
                ec->n_pending--;
            }

            ngx_cpystrn((u_char *) s->err_code, (u_char *) "engine_not_ready",
                        sizeof(s->err_code));
            slora_queue_fail(ec->q, i, NGX_HTTP_SERVICE_UNAVAILABLE,
                             "nginx is reloading or stopping: ask again");
            ngx_http_slora_engine_mark(ec, i);
            return;
        }

        rc = s->op == SLORA_OP_DEREGISTER
             ? ngx_http_slora_engine_deregister(ec, i, s, &err)
             : ngx_http_slora_engine_register(ec, i, s, buf, &err);
        break;

    default:
        rc = slora_err_set(&err, SLORA_ERROR, "slot %u: unknown op %u", i,
                           s->op);
        break;
    }

    if (rc == SLORA_AGAIN) {
        if (!ec->pending[i]) {
            ec->pending[i] = 1;
            ec->n_pending++;
        }
        return;
    }

    if (ec->pending[i]) {
        ec->pending[i] = 0;
        ec->n_pending--;
    }

    if (rc == SLORA_OK) {
        slora_queue_finish(ec->q, i, SLORA_FINISH_NONE);
        ngx_http_slora_engine_mark(ec, i);
        return;
    }

    if (rc == SLORA_BUSY && s->op != SLORA_OP_MODELS) {
        /* the pool has no room, or requests or a pin hold the adapter */
        ngx_cpystrn((u_char *) s->err_code, (u_char *) "adapter_busy",
                    sizeof(s->err_code));
        slora_queue_fail(ec->q, i, NGX_HTTP_CONFLICT, err.msg);
        ngx_http_slora_engine_mark(ec, i);
        return;
    }

    if (rc == SLORA_ERROR && (s->op == SLORA_OP_LOAD || s->op == SLORA_OP_PIN))
    {
        /* the adapter's files cannot be read */
        ngx_http_slora_engine_fail(ec, i, SLORA_ERRCODE_INTERNAL, err.msg);
        return;
    }

    ngx_http_slora_engine_fail(ec, i, slora_engine_errcode(rc),
                               err.msg[0] ? err.msg : "the engine refused"
                                                      " the operation");
}


/*
 * Ops waiting on the catalog, after a step applied its answers. An op
 * that ends may free what another waits on (a registration waits for
 * the one write to Redis in flight to be read back), and that other may
 * sit in a slot the pass has already gone by: the pass is made again
 * while the one before ended an op, so it does not wait for the next
 * wake, a second later on an idle engine. Each further pass ends at
 * least one op, so they end.
 */
static void
ngx_http_slora_engine_retry(ngx_http_slora_engine_ctx_t *ec)
{
    uint32_t       i;
    uint32_t       before;
    slora_slot_t  *s;

    do {
        before = ec->n_pending;

        for (i = 0; ec->n_pending && i < ec->n_slots; i++) {
            if (!ec->pending[i]) {
                continue;
            }

            s = slora_queue_slot(ec->q, i);

            if (atomic_load(&s->cancel)) {
                if (s->op != SLORA_OP_GENERATE) {
                    ngx_http_slora_engine_abandon(ec, i, s);

                } else {
                    ngx_log_error(NGX_LOG_INFO, ec->cycle->log, 0,
                                  "slora engine: the request in slot %uD "
                                  "cancelled while its constraint "
                                  "compiled", i);
                }

                ec->pending[i] = 0;
                ec->n_pending--;
                slora_queue_finish(ec->q, i, SLORA_FINISH_CANCEL);
                ngx_http_slora_engine_mark(ec, i);
                continue;
            }

            if (s->op == SLORA_OP_GENERATE) {
                /* a generation waiting on its constraint's compile */
                ngx_http_slora_engine_submit(ec, i);
                continue;
            }

            ngx_http_slora_engine_op(ec, i);
        }

    } while (ec->n_pending && ec->n_pending < before);
}


/*
 * MODELS: the tenant's default and allowed adapters ("*": every adapter
 * the catalog has read), or without a tenant every adapter the catalog
 * knows; sorted, from after the cursor in s->adapter; before them, for
 * a tenant without a default adapter, the base model, its default.
 */
static int
ngx_http_slora_engine_models(ngx_http_slora_engine_ctx_t *ec,
    slora_slot_t *s, u_char *buf, size_t cap, slora_err_t *err)
{
    u_char                         rec[SLORA_QUEUE_ADAPTER_LEN + 2];
    size_t                         len;
    int32_t                        k, n, lo, hi;
    int                            rc, base;
    const char                   **names, *dflt, *d, **own;
    const slora_catalog_tenant_t  *t;

    dflt = NULL;
    base = 0;
    own = NULL;
    names = NULL;
    n = 0;

    if (s->tenant[0] && ec->redis) {
        rc = slora_engine_tenant(ec->engine, s->tenant, &t, err);

        if (rc == SLORA_DECLINED) {
            return slora_err_set(err, SLORA_FORBIDDEN, "unknown tenant"
                                 " \"%s\"", s->tenant);
        }

        if (rc != SLORA_OK) {
            return rc;
        }

        dflt = t->default_adapter;
        base = dflt == NULL;

        if (!t->allow_all) {
            own = ngx_alloc((t->n_allowed + 1) * sizeof(char *),
                            ec->cycle->log);
            if (own == NULL) {
                return slora_err_set(err, SLORA_ERROR, "no memory");
            }

            /* the allow list comes sorted (slora_catalog.h); the default
             * goes in at its place, so no page sorts the list again */
            d = dflt;
            n = 0;

            for (k = 0; k < t->n_allowed; k++) {
                if (d != NULL && ngx_strcmp(d, t->allowed[k]) < 0) {
                    own[n++] = d;
                    d = NULL;
                }

                own[n++] = t->allowed[k];
            }

            if (d != NULL) {
                own[n++] = d;
            }

            names = own;
        }
    }

    if (own == NULL) {
        ngx_http_slora_engine_refresh(ec);
        n = slora_engine_adapters(ec->engine, &names);
    }

    s->answer_len = 0;
    s->more = 0;
    rc = SLORA_OK;

    /* the base model is a tenant's own only as its default: first, on
     * the first page (the cursor stays at its start) */
    if (base && s->adapter[0] == '\0'
        && !ngx_http_slora_engine_put(s, buf, cap, (u_char *) "bbase",
                                      sizeof("bbase"), ""))
    {
        rc = slora_err_set(err, SLORA_ERROR, "the model list does not fit"
                           " the slot (raise max_ctx)");
        n = 0;
    }

    /* a page starts after the name the last one ended at: the first
     * name past it, by bisection, since a large catalog is listed page
     * after page on the engine's thread */
    lo = 0;
    hi = n;

    while (lo < hi) {
        k = lo + (hi - lo) / 2;

        if (ngx_strcmp(names[k], s->adapter) <= 0) {
            lo = k + 1;

        } else {
            hi = k;
        }
    }

    for (k = lo; k < n; k++) {
        if (k > 0 && ngx_strcmp(names[k], names[k - 1]) == 0) {
            continue;
        }

        /* a tenant's set in Redis may name what no adapter can be (one
         * written there by hand): listed, one not UTF-8 would make the
         * answer no JSON */
        len = ngx_strlen(names[k]);
        if (len >= SLORA_QUEUE_ADAPTER_LEN
            || !slora_catalog_valid_name(names[k]))
        {
            continue;
        }

        rec[0] = (dflt && ngx_strcmp(dflt, names[k]) == 0) ? 'd' : '-';
        ngx_memcpy(rec + 1, names[k], len + 1);

        if (!ngx_http_slora_engine_put(s, buf, cap, rec, len + 2, names[k]))
        {
            rc = s->answer_len ? SLORA_OK
                 : slora_err_set(err, SLORA_ERROR, "the model list does"
                                 " not fit the slot (raise max_ctx)");
            break;
        }
    }

    if (own != NULL) {
        ngx_free(own);
    }

    return rc;
}


/* ADAPTERS: each adapter the catalog knows with its tier, as JSON. */
static int
ngx_http_slora_engine_list(ngx_http_slora_engine_ctx_t *ec,
    slora_slot_t *s, u_char *buf, size_t cap, slora_err_t *err)
{
    u_char                       *p, rec[SLORA_QUEUE_ADAPTER_LEN * 6 + 256];
    size_t                        len;
    int32_t                       k, n, max;
    const slora_adapter_info_t   *list, *a;

    /* the page's adapters only: those past the cursor, and no more than
     * records of their shortest size fill (should they all fit, more is
     * set below all the same) */
    max = (int32_t) (cap / NGX_HTTP_SLORA_LIST_REC_MIN + 1);
    n = slora_engine_adapter_list(ec->engine, s->adapter, max, &list);

    s->answer_len = 0;
    s->more = 0;

    for (k = 0; k < n; k++) {
        a = &list[k];
        len = ngx_strlen(a->name);

        if (len >= SLORA_QUEUE_ADAPTER_LEN) {
            continue;
        }

        p = ngx_http_slora_lit(rec, ",{\"name\":\"");
        p += ngx_http_slora_json_escape(p, (u_char *) a->name, len);
        p = ngx_sprintf(p, "\",\"tier\":\"%s\",\"pinned\":%s,\"refs\":%D,"
                        "\"rank\":%D,\"host_bytes\":%uz,\"pool_pages\":%D}",
                        a->tier, a->pinned ? "true" : "false", a->refs,
                        a->rank, a->host_bytes, a->pool_pages);

        if (!ngx_http_slora_engine_put(s, buf, cap, rec, p - rec, a->name)) {
            return s->answer_len ? SLORA_OK
                   : slora_err_set(err, SLORA_ERROR, "the adapter list does"
                                   " not fit the slot (raise max_ctx)");
        }
    }

    /* the page ended at max, not at the slot's end: there may be more,
     * after the cursor engine_put left at the last name */
    if (n == max && s->answer_len > 0) {
        s->more = 1;
    }

    return SLORA_OK;
}


/*
 * PREFIX_FLUSH: empties the prefix cache and answers how many pages went
 * back to the pool now, in digits. The stats are published before the
 * worker learns of the answer, so that a /status asked right after it
 * shows the cache empty rather than what the last publication saw.
 */
static int
ngx_http_slora_engine_flush(ngx_http_slora_engine_ctx_t *ec,
    slora_slot_t *s, u_char *buf, size_t cap, slora_err_t *err)
{
    int32_t  n;

    if (cap < NGX_INT32_LEN) {
        return slora_err_set(err, SLORA_ERROR, "the answer does not fit"
                             " the slot (raise max_ctx)");
    }

    n = slora_engine_prefix_flush(ec->engine);

    s->answer_len = ngx_sprintf(buf, "%D", n) - buf;
    s->more = 0;

    ngx_http_slora_engine_stats(ec);

    return SLORA_OK;
}


/* Appends a record to an op's answer; when it does not fit, sets more
 * and leaves the cursor at the last name written. */
static ngx_uint_t
ngx_http_slora_engine_put(slora_slot_t *s, u_char *buf, size_t cap,
    const u_char *rec, size_t len, const char *name)
{
    if (s->answer_len + len > cap) {
        s->more = 1;
        return 0;
    }

    ngx_memcpy(buf + s->answer_len, rec, len);
    s->answer_len += len;

    /* the worker asks for the next page after this name */
    ngx_cpystrn((u_char *) s->adapter, (u_char *) name,
                sizeof(s->adapter));

    return 1;
}


static void
ngx_http_slora_engine_event(void *data, const slora_event_t *ev)
{
    ngx_http_slora_engine_ctx_t  *ec = data;

    int32_t           j;
    uint32_t          i;
    slora_slot_t     *s;
    slora_logprob_t  *lp;

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
        /* before the token: a reader that sees it sees this too */
        s->n_cached = ev->cached_tokens;

        if (slora_queue_publish(ec->q, i, ev->token, ev->logprob,
                                ev->n_top, ev->top_ids, ev->top_logprobs)
            != SLORA_OK
            && !ec->cancelled[i])
        {
            /* cannot happen: max_tokens <= output_cap was checked */
            ec->cancelled[i] = 1;
            slora_engine_cancel(ec->engine, ev->id);
        }
        break;

    case SLORA_EV_SCORE:
        /* read by the worker once the first token or the end is
         * published, both release stores after this */
        if (ev->pos > 0 && (uint32_t) ev->pos < ec->q->geom.prompt_cap) {
            lp = slora_queue_score(ec->q, i, (uint32_t) ev->pos);
            lp->logprob = ev->logprob;
            lp->rank = ev->rank;
            lp->n_top = ngx_min(ev->n_top, (int32_t) ec->q->geom.top_cap);

            for (j = 0; j < lp->n_top; j++) {
                lp->top[j].id = ev->top_ids[j];
                lp->top[j].logprob = ev->top_logprobs[j];
            }
        }
        return;

    case SLORA_EV_DONE:
        if (ev->cached_tokens > 0) {
            /* a stop id first: no TOKEN said it */
            s->n_cached = ev->cached_tokens;
        }

        s->accepted_prediction = ev->accepted_prediction;
        s->rejected_prediction = ev->rejected_prediction;
        s->stop_token = ev->finish == SLORA_FINISH_STOP && ev->token >= 0
                        ? ev->token : -1;
        s->stop_logprob = s->stop_token >= 0 ? ev->logprob : 0;

        slora_queue_finish(ec->q, i, ev->finish);
        ec->active[i] = 0;
        ec->n_active--;
        break;

    case SLORA_EV_ERROR:
        ec->active[i] = 0;
        ec->n_active--;

        /* before the slot is failed: the worker reads it then */
        s->retry_after = ngx_http_slora_retry_s(ev->retry_after_ms);

        ngx_http_slora_engine_fail(ec, i,
                                   ev->code != SLORA_ERRCODE_NONE
                                   ? ev->code : SLORA_ERRCODE_INTERNAL,
                                   ev->error ? ev->error : "engine error");
        return;
    }

    ngx_http_slora_engine_mark(ec, i);
}


void
ngx_http_slora_engine_mark(ngx_http_slora_engine_ctx_t *ec, uint32_t i)
{
    if (!ec->dirty[i]) {
        ec->dirty[i] = 1;
        ec->dirty_list[ec->n_dirty++] = i;
    }
}


void
ngx_http_slora_engine_wake(ngx_http_slora_engine_ctx_t *ec)
{
    uint32_t  k, i;
    uint64_t  one;

    one = 1;

    for (k = 0; k < ec->n_dirty; k++) {
        i = ec->dirty_list[k];
        ec->dirty[i] = 0;

        if (write(ngx_http_slora_slot_fd(i), &one, sizeof(one)) == -1
            && ngx_errno != NGX_EAGAIN)
        {
            ngx_log_error(NGX_LOG_ALERT, ec->cycle->log, ngx_errno,
                          "slora engine: write() to slot %uD eventfd"
                          " failed", i);
        }
    }

    ec->n_dirty = 0;
}


/*
 * The engine's figures into the zone, for /status and /metrics, and the
 * keys of the constraints it keeps compiled (up to 64, the most recently
 * used first, written only when what it keeps changes), which a worker
 * then takes as compiling without compiling them
 * (ngx_http_slora_parse.c). Stale keys do no harm: a constraint that
 * compiled once always does.
 */
void
ngx_http_slora_engine_stats(ngx_http_slora_engine_ctx_t *ec)
{
    int32_t                n, k;
    uint64_t               version, keys[SLORA_QUEUE_SCHEMA_KEYS];
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
    atomic_store_explicit(&q->preemptions, st.preemptions,
                          memory_order_relaxed);
    atomic_store_explicit(&q->rate_limited, st.rate_limited,
                          memory_order_relaxed);
    atomic_store_explicit(&q->slo_aborted, st.slo_aborted,
                          memory_order_relaxed);
    atomic_store_explicit(&q->pages_cached, st.pages_cached,
                          memory_order_relaxed);
    atomic_store_explicit(&q->prefix_pages, st.prefix_pages,
                          memory_order_relaxed);
    atomic_store_explicit(&q->prefix_lookups, st.prefix_lookups,
                          memory_order_relaxed);
    atomic_store_explicit(&q->prefix_hit_tokens, st.prefix_hit_tokens,
                          memory_order_relaxed);
    atomic_store_explicit(&q->prefix_evictions, st.prefix_evictions,
                          memory_order_relaxed);
    atomic_store_explicit(&q->schema_compiles, st.schema_compiles,
                          memory_order_relaxed);
    atomic_store_explicit(&q->schema_hits, st.schema_hits,
                          memory_order_relaxed);
    atomic_store_explicit(&q->schemas_kept, st.schemas_kept,
                          memory_order_relaxed);
    atomic_store_explicit(&q->schemas_compiling, st.schemas_compiling,
                          memory_order_relaxed);
    atomic_store_explicit(&q->schema_bytes, (uint64_t) st.schema_bytes,
                          memory_order_relaxed);

    /* the keys again only where what the engine keeps changed */
    version = slora_engine_schema_version(ec->engine) + 1;

    if (version != ec->keys_version) {
        n = slora_engine_schema_keys(ec->engine, keys,
                                     SLORA_QUEUE_SCHEMA_KEYS);

        for (k = 0; k < SLORA_QUEUE_SCHEMA_KEYS; k++) {
            atomic_store_explicit(&q->schema_keys[k], k < n ? keys[k] : 0,
                                  memory_order_relaxed);
        }

        ec->keys_version = version;
    }

    atomic_store_explicit(&q->prediction_accepted, st.prediction_accepted,
                          memory_order_relaxed);
    atomic_store_explicit(&q->prediction_rejected, st.prediction_rejected,
                          memory_order_relaxed);
    atomic_store_explicit(&q->lookup_accepted, st.lookup_accepted,
                          memory_order_relaxed);
    atomic_store_explicit(&q->lookup_rejected, st.lookup_rejected,
                          memory_order_relaxed);
    atomic_store_explicit(&q->model_step_ns, st.model_step_ns,
                          memory_order_relaxed);
    atomic_store_explicit(&q->model_token_ns, st.model_token_ns,
                          memory_order_relaxed);
    atomic_store_explicit(&q->model_pair_ps,
                          (int64_t) (st.model_pair_ns * 1000.0 + 0.5),
                          memory_order_relaxed);
    atomic_store_explicit(&q->adapter_loads, st.adapter_loads,
                          memory_order_relaxed);
    atomic_store_explicit(&q->adapter_evictions, st.adapter_evictions,
                          memory_order_relaxed);
    atomic_store_explicit(&q->adapter_hits, st.adapter_hits,
                          memory_order_relaxed);
    atomic_store_explicit(&q->adapter_uploads, st.adapter_uploads,
                          memory_order_relaxed);
    atomic_store_explicit(&q->adapter_warmed, st.adapter_warmed,
                          memory_order_relaxed);
    atomic_store_explicit(&q->adapters_pinned, st.adapters_pinned,
                          memory_order_relaxed);
    atomic_store_explicit(&q->resolving, st.resolving, memory_order_relaxed);
    atomic_store_explicit(&q->host_bytes, st.host_bytes,
                          memory_order_relaxed);
    atomic_store_explicit(&q->host_budget, st.host_budget,
                          memory_order_relaxed);
    atomic_store_explicit(&q->host_hits, st.host_hits, memory_order_relaxed);
    atomic_store_explicit(&q->host_misses, st.host_misses,
                          memory_order_relaxed);
    atomic_store_explicit(&q->host_evictions, st.host_evictions,
                          memory_order_relaxed);
    atomic_store_explicit(&q->prefetched, st.prefetched,
                          memory_order_relaxed);
    atomic_store_explicit(&q->load_errors, st.load_errors,
                          memory_order_relaxed);
    atomic_store_explicit(&q->catalog_redis, (uint32_t) st.catalog_redis,
                          memory_order_relaxed);
    atomic_store_explicit(&q->catalog_up, (uint32_t) st.catalog_up,
                          memory_order_relaxed);
    atomic_store_explicit(&q->catalog_hits, st.catalog_hits,
                          memory_order_relaxed);
    atomic_store_explicit(&q->catalog_misses, st.catalog_misses,
                          memory_order_relaxed);
    atomic_store_explicit(&q->catalog_fetches, st.catalog_fetches,
                          memory_order_relaxed);
    atomic_store_explicit(&q->catalog_invalidations,
                          st.catalog_invalidations, memory_order_relaxed);
    atomic_store_explicit(&q->catalog_reconnects, st.catalog_reconnects,
                          memory_order_relaxed);
    atomic_store_explicit(&q->host_bytes_peak, st.host_bytes_peak,
                          memory_order_relaxed);
    atomic_store_explicit(&q->pages_used_peak, st.pages_used_peak,
                          memory_order_relaxed);
    atomic_store_explicit(&q->pool_bytes, st.pool_bytes,
                          memory_order_relaxed);

    ec->stats_ns = slora_now_ns();
}


static void
ngx_http_slora_engine_exit(ngx_http_slora_engine_ctx_t *ec, int status)
{
    uint32_t       i;
    slora_slot_t  *s;

    atomic_store(&ec->q->ready, 0);

    /* whatever still runs is lost with this process */
    for (i = 0; i < ec->n_slots; i++) {
        if (ec->active[i] || ec->pending[i]) {
            s = slora_queue_slot(ec->q, i);
            ngx_cpystrn((u_char *) s->err_code, (u_char *) "shutting_down",
                        sizeof(s->err_code));
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
