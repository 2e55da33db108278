/*
 * ngx_http_slora_status.c: the slora_status (JSON), slora_metrics
 * (Prometheus text) and slora_health (a probe's status code) handlers,
 * and the log-phase handler that counts every slora_api response by
 * status.
 *
 * The one idea: all numbers live in the shared zone, written by whoever
 * knows them (the engine its pool and adapter figures and step times,
 * workers their requests, tokens and latencies) with relaxed atomics, so
 * any worker can answer for the whole server without asking the engine.
 */

#include "ngx_http_slora_module.h"


/* the answers' bounds: every counter at its 20 digits, the status
 * comes to some 2.8 KB (with the store's part), the metrics to some 16
 * KB with the histograms */
#define NGX_HTTP_SLORA_STATUS_SIZE   4096
#define NGX_HTTP_SLORA_METRICS_SIZE  32768


static u_char *ngx_http_slora_hist(u_char *p, u_char *end, const char *name,
    const char *help, slora_hist_t *h);
static u_char *ngx_http_slora_hist_fine(u_char *p, u_char *end,
    const char *name, const char *help, slora_hist_fine_t *h);
static u_char *ngx_http_slora_prom_hist(u_char *p, u_char *end,
    const char *name, const char *help, _Atomic uint64_t *bucket,
    const double *le, int n, double sum, uint64_t count);
static ngx_int_t ngx_http_slora_status_start(ngx_http_request_t *r,
    size_t size, slora_queue_t **q, ngx_buf_t **b);
static ngx_int_t ngx_http_slora_status_send(ngx_http_request_t *r,
    ngx_buf_t *b, const char *type);
static ngx_int_t ngx_http_slora_log_handler(ngx_http_request_t *r);

#define ngx_http_slora_ld(v)  atomic_load_explicit(&(v), memory_order_relaxed)


ngx_int_t
ngx_http_slora_status_handler(ngx_http_request_t *r)
{
    int64_t                        hb;
    ngx_int_t                      rc;
    ngx_buf_t                     *b;
    slora_queue_t                 *q;
    ngx_http_slora_store_stats_t   ss;

    rc = ngx_http_slora_status_start(r, NGX_HTTP_SLORA_STATUS_SIZE, &q, &b);
    if (rc != NGX_OK) {
        return rc;
    }

    hb = ngx_http_slora_ld(q->heartbeat_ns);

    b->last = ngx_slprintf(b->last, b->end,
        "{\"engine\":{\"pid\":%D,\"epoch\":%uD,\"restarts\":%uD,"
        "\"ready\":%s,\"heartbeat_ms_ago\":%L},"
        "\"slots\":{\"total\":%uD,\"used\":%uD},"
        "\"requests\":{\"waiting\":%D,\"running\":%D,\"total\":%uL,"
        "\"preempted\":%uL,\"slo_aborted\":%uL,\"rate_limited\":%uL},"
        "\"step_model\":{\"per_step_ms\":%.3f,\"per_token_ms\":%.3f,"
        "\"per_pair_ns\":%.3f},"
        "\"pool\":{\"pages_total\":%D,\"pages_free\":%D,\"pages_kv\":%D,"
        "\"pages_adapter\":%D,\"pages_cached\":%D,\"pages_used_peak\":%D,"
        "\"bytes\":%uL},"
        "\"prefix_cache\":{\"pages\":%D,\"lookups\":%uL,"
        "\"hit_tokens\":%uL,\"evictions\":%uL},"
        "\"prediction\":{\"accepted\":%uL,\"rejected\":%uL},"
        "\"lookup\":{\"accepted\":%uL,\"rejected\":%uL},"
        "\"constraints\":{\"compiles\":%uL,\"hits\":%uL,\"kept\":%D,"
        "\"compiling\":%D,\"bytes\":%uL,\"known\":%uL},"
        "\"adapters\":{\"in_pool\":%D,\"in_host\":%D,\"loads\":%uL,"
        "\"evictions\":%uL,\"hits\":%uL,\"uploads\":%uL,"
        "\"uploads_ahead\":%uL,\"pinned\":%D,"
        "\"load_errors\":%uL},"
        "\"host\":{\"bytes\":%uL,\"peak\":%uL,\"budget\":%uL,\"hits\":%uL,"
        "\"misses\":%uL,\"evictions\":%uL,\"prefetched\":%uL},"
        "\"catalog\":{\"source\":\"%s\",\"up\":%s,\"resolving\":%D,"
        "\"hits\":%uL,\"misses\":%uL,\"fetches\":%uL,"
        "\"invalidations\":%uL,\"reconnects\":%uL},"
        "\"tokens\":{\"prompt\":%uL,\"completion\":%uL},",
        ngx_http_slora_ld(q->engine_pid), ngx_http_slora_ld(q->epoch),
        ngx_http_slora_ld(q->restarts),
        ngx_http_slora_engine_down(q) == NULL ? "true" : "false",
        hb ? (int64_t) (slora_now_ns() - hb) / 1000000 : (int64_t) -1,
        q->geom.n_slots, ngx_http_slora_ld(q->slots_used),
        ngx_http_slora_ld(q->waiting), ngx_http_slora_ld(q->running),
        ngx_http_slora_ld(q->requests_total),
        ngx_http_slora_ld(q->preemptions), ngx_http_slora_ld(q->slo_aborted),
        ngx_http_slora_ld(q->rate_limited),
        (double) ngx_http_slora_ld(q->model_step_ns) / 1e6,
        (double) ngx_http_slora_ld(q->model_token_ns) / 1e6,
        (double) ngx_http_slora_ld(q->model_pair_ps) / 1e3,
        ngx_http_slora_ld(q->pages_total), ngx_http_slora_ld(q->pages_free),
        ngx_http_slora_ld(q->pages_kv), ngx_http_slora_ld(q->pages_adapter),
        ngx_http_slora_ld(q->pages_cached),
        ngx_http_slora_ld(q->pages_used_peak),
        ngx_http_slora_ld(q->pool_bytes),
        ngx_http_slora_ld(q->prefix_pages),
        ngx_http_slora_ld(q->prefix_lookups),
        ngx_http_slora_ld(q->prefix_hit_tokens),
        ngx_http_slora_ld(q->prefix_evictions),
        ngx_http_slora_ld(q->prediction_accepted),
        ngx_http_slora_ld(q->prediction_rejected),
        ngx_http_slora_ld(q->lookup_accepted),
        ngx_http_slora_ld(q->lookup_rejected),
        ngx_http_slora_ld(q->schema_compiles),
        ngx_http_slora_ld(q->schema_hits),
        ngx_http_slora_ld(q->schemas_kept),
        ngx_http_slora_ld(q->schemas_compiling),
        ngx_http_slora_ld(q->schema_bytes),
        ngx_http_slora_ld(q->schema_known_hits),
        ngx_http_slora_ld(q->adapters_in_pool),
        ngx_http_slora_ld(q->adapters_in_host),
        ngx_http_slora_ld(q->adapter_loads),
        ngx_http_slora_ld(q->adapter_evictions),
        ngx_http_slora_ld(q->adapter_hits),
        ngx_http_slora_ld(q->adapter_uploads),
        ngx_http_slora_ld(q->adapter_warmed),
        ngx_http_slora_ld(q->adapters_pinned),
        ngx_http_slora_ld(q->load_errors),
        ngx_http_slora_ld(q->host_bytes),
        ngx_http_slora_ld(q->host_bytes_peak),
        ngx_http_slora_ld(q->host_budget),
        ngx_http_slora_ld(q->host_hits),
        ngx_http_slora_ld(q->host_misses),
        ngx_http_slora_ld(q->host_evictions),
        ngx_http_slora_ld(q->prefetched),
        ngx_http_slora_ld(q->catalog_redis) ? "redis" : "directory",
        ngx_http_slora_ld(q->catalog_up) ? "true" : "false",
        ngx_http_slora_ld(q->resolving),
        ngx_http_slora_ld(q->catalog_hits),
        ngx_http_slora_ld(q->catalog_misses),
        ngx_http_slora_ld(q->catalog_fetches),
        ngx_http_slora_ld(q->catalog_invalidations),
        ngx_http_slora_ld(q->catalog_reconnects),
        ngx_http_slora_ld(q->tokens_prompt),
        ngx_http_slora_ld(q->tokens_completion));

    if (ngx_http_slora_store_stats(r, &ss) == NGX_OK) {
        b->last = ngx_slprintf(b->last, b->end,
            "\"responses_store\":{\"size\":%uz,\"free\":%uz,"
            "\"responses\":%ui,\"conversations\":%ui,\"running\":%ui,"
            "\"evictions\":%ui,"
            "\"events_lost\":%ui}}\n",
            ss.size, ss.free, ss.responses, ss.conversations, ss.running,
            ss.evictions, ss.events_lost);

    } else {
        b->last = ngx_slprintf(b->last, b->end, "\"responses_store\":null}\n");
    }

    return ngx_http_slora_status_send(r, b, "application/json");
}


/*
 * What a load balancer's or an orchestrator's probe asks, answered by the
 * status code: 200 where a request would go to the engine now, else 503
 * with the error such a request gets (engine_not_ready, and why).
 */

ngx_int_t
ngx_http_slora_health_handler(ngx_http_request_t *r)
{
    ngx_int_t       rc;
    ngx_buf_t      *b;
    slora_queue_t  *q;

    static const char  ok[] = "{\"status\":\"ok\"}\n";

    rc = ngx_http_slora_status_start(r, sizeof(ok) - 1, &q, &b);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_slora_not_ready(r, q, 1);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    b->last = ngx_cpymem(b->last, ok, sizeof(ok) - 1);

    return ngx_http_slora_send_body(r, NGX_HTTP_OK, b, "application/json");
}


ngx_int_t
ngx_http_slora_metrics_handler(ngx_http_request_t *r)
{
    u_char                        *p, *end;
    ngx_int_t                      rc, i;
    ngx_buf_t                     *b;
    slora_queue_t                 *q;
    ngx_http_slora_store_stats_t   ss;

    rc = ngx_http_slora_status_start(r, NGX_HTTP_SLORA_METRICS_SIZE, &q, &b);
    if (rc != NGX_OK) {
        return rc;
    }

    p = b->last;
    end = b->end;

    p = ngx_slprintf(p, end,
                     "# HELP slora_requests_total Requests served by"
                     " slora_api, by HTTP status.\n"
                     "# TYPE slora_requests_total counter\n");

    for (i = 0; i < SLORA_STATUS_N; i++) {
        if (i < SLORA_STATUS_N - 1) {
            p = ngx_slprintf(p, end,
                             "slora_requests_total{status=\"%d\"} %uL\n",
                             slora_status_codes[i],
                             ngx_http_slora_ld(q->requests_by_status[i]));

        } else {
            p = ngx_slprintf(p, end,
                             "slora_requests_total{status=\"other\"} %uL\n",
                             ngx_http_slora_ld(q->requests_by_status[i]));
        }
    }

    p = ngx_slprintf(p, end,
        "# HELP slora_tokens_total Tokens processed.\n"
        "# TYPE slora_tokens_total counter\n"
        "slora_tokens_total{kind=\"prompt\"} %uL\n"
        "slora_tokens_total{kind=\"completion\"} %uL\n",
        ngx_http_slora_ld(q->tokens_prompt),
        ngx_http_slora_ld(q->tokens_completion));

    p = ngx_http_slora_hist(p, end, "slora_ttft_seconds",
                            "Time from request to first token.",
                            &q->ttft_seconds);
    p = ngx_http_slora_hist(p, end, "slora_inter_token_seconds",
                            "Time between tokens of a stream.",
                            &q->inter_token_seconds);
    p = ngx_http_slora_hist(p, end, "slora_engine_step_seconds",
                            "Duration of one engine step.",
                            &q->step_seconds);
    p = ngx_http_slora_hist_fine(p, end, "slora_delivery_seconds",
                                 "Time from the engine publishing a"
                                 " streamed token to the worker writing"
                                 " its event.", &q->delivery_seconds);

    p = ngx_slprintf(p, end,
        "# HELP slora_queue_depth Requests waiting in the engine.\n"
        "# TYPE slora_queue_depth gauge\n"
        "slora_queue_depth %D\n"
        "# HELP slora_running_requests Requests the engine runs.\n"
        "# TYPE slora_running_requests gauge\n"
        "slora_running_requests %D\n"
        "# HELP slora_pool_pages Pages of the unified pool.\n"
        "# TYPE slora_pool_pages gauge\n"
        "slora_pool_pages{kind=\"free\"} %D\n"
        "slora_pool_pages{kind=\"kv\"} %D\n"
        "slora_pool_pages{kind=\"adapter\"} %D\n"
        "slora_pool_pages{kind=\"cached\"} %D\n"
        "# HELP slora_adapter_loads_total Adapters loaded from disk.\n"
        "# TYPE slora_adapter_loads_total counter\n"
        "slora_adapter_loads_total %uL\n"
        "# HELP slora_adapter_evictions_total Adapters evicted from the"
        " pool.\n"
        "# TYPE slora_adapter_evictions_total counter\n"
        "slora_adapter_evictions_total %uL\n"
        "# HELP slora_adapter_hits_total Adapters found in the pool.\n"
        "# TYPE slora_adapter_hits_total counter\n"
        "slora_adapter_hits_total %uL\n"
        "# HELP slora_engine_ready Whether requests go to the engine now"
        " (1), or get 503 engine_not_ready (0).\n"
        "# TYPE slora_engine_ready gauge\n"
        "slora_engine_ready %d\n"
        "# HELP slora_engine_restarts_total Engine process restarts.\n"
        "# TYPE slora_engine_restarts_total counter\n"
        "slora_engine_restarts_total %uD\n"
        "# HELP slora_preemptions_total Running requests put back to wait"
        " when the pool ran dry.\n"
        "# TYPE slora_preemptions_total counter\n"
        "slora_preemptions_total %uL\n"
        "# HELP slora_slo_aborted_total Requests refused by schedule=slo"
        " (429 slo_unattainable).\n"
        "# TYPE slora_slo_aborted_total counter\n"
        "slora_slo_aborted_total %uL\n"
        "# HELP slora_rate_limited_total Requests refused by their"
        " tenant's rate (429 rate_limit_exceeded).\n"
        "# TYPE slora_rate_limited_total counter\n"
        "slora_rate_limited_total %uL\n"
        "# HELP slora_step_model_seconds The engine's step-time model, its"
        " terms: a step's own time, a token's, attention's per token and"
        " key.\n"
        "# TYPE slora_step_model_seconds gauge\n"
        "slora_step_model_seconds{term=\"step\"} %.6f\n"
        "slora_step_model_seconds{term=\"token\"} %.6f\n"
        "slora_step_model_seconds{term=\"pair\"} %.12f\n",
        ngx_http_slora_ld(q->waiting), ngx_http_slora_ld(q->running),
        ngx_http_slora_ld(q->pages_free), ngx_http_slora_ld(q->pages_kv),
        ngx_http_slora_ld(q->pages_adapter),
        ngx_http_slora_ld(q->pages_cached),
        ngx_http_slora_ld(q->adapter_loads),
        ngx_http_slora_ld(q->adapter_evictions),
        ngx_http_slora_ld(q->adapter_hits),
        ngx_http_slora_engine_down(q) == NULL,
        ngx_http_slora_ld(q->restarts),
        ngx_http_slora_ld(q->preemptions),
        ngx_http_slora_ld(q->slo_aborted),
        ngx_http_slora_ld(q->rate_limited),
        (double) ngx_http_slora_ld(q->model_step_ns) / 1e9,
        (double) ngx_http_slora_ld(q->model_token_ns) / 1e9,
        (double) ngx_http_slora_ld(q->model_pair_ps) / 1e12);

    p = ngx_slprintf(p, end,
        "# HELP slora_adapter_uploads_total Adapters copied from the host"
        " tier into the pool.\n"
        "# TYPE slora_adapter_uploads_total counter\n"
        "slora_adapter_uploads_total %uL\n"
        "# HELP slora_adapter_uploads_ahead_total Of them, adapters of"
        " waiting requests uploaded while the step before their admission"
        " ran.\n"
        "# TYPE slora_adapter_uploads_ahead_total counter\n"
        "slora_adapter_uploads_ahead_total %uL\n"
        "# HELP slora_adapter_load_errors_total Adapter reads that failed.\n"
        "# TYPE slora_adapter_load_errors_total counter\n"
        "slora_adapter_load_errors_total %uL\n"
        "# HELP slora_adapters_pinned Adapters pinned in the pool.\n"
        "# TYPE slora_adapters_pinned gauge\n"
        "slora_adapters_pinned %D\n"
        "# HELP slora_host_tier_bytes Bytes of adapters in host memory.\n"
        "# TYPE slora_host_tier_bytes gauge\n"
        "slora_host_tier_bytes %uL\n"
        "# HELP slora_host_tier_peak_bytes The most bytes the host tier"
        " held after any engine step.\n"
        "# TYPE slora_host_tier_peak_bytes gauge\n"
        "slora_host_tier_peak_bytes %uL\n"
        "# HELP slora_host_tier_budget_bytes The host tier's budget.\n"
        "# TYPE slora_host_tier_budget_bytes gauge\n"
        "slora_host_tier_budget_bytes %uL\n"
        "# HELP slora_pool_bytes Bytes of the unified pool's arena.\n"
        "# TYPE slora_pool_bytes gauge\n"
        "slora_pool_bytes %uL\n"
        "# HELP slora_pool_pages_used_peak The most pages (kv and adapter)"
        " in use after any engine step.\n"
        "# TYPE slora_pool_pages_used_peak gauge\n"
        "slora_pool_pages_used_peak %D\n"
        "# HELP slora_host_tier_lookups_total Pool misses, by whether the"
        " host tier had the adapter.\n"
        "# TYPE slora_host_tier_lookups_total counter\n"
        "slora_host_tier_lookups_total{result=\"hit\"} %uL\n"
        "slora_host_tier_lookups_total{result=\"miss\"} %uL\n"
        "# HELP slora_host_tier_evictions_total Adapters evicted from host"
        " memory.\n"
        "# TYPE slora_host_tier_evictions_total counter\n"
        "slora_host_tier_evictions_total %uL\n"
        "# HELP slora_adapter_prefetched_total Adapters read into host"
        " memory ahead of need.\n"
        "# TYPE slora_adapter_prefetched_total counter\n"
        "slora_adapter_prefetched_total %uL\n"
        "# HELP slora_catalog_up Whether the catalog's Redis answers (1 for"
        " the adapter directory).\n"
        "# TYPE slora_catalog_up gauge\n"
        "slora_catalog_up %d\n"
        "# HELP slora_catalog_resolving Requests waiting on the catalog.\n"
        "# TYPE slora_catalog_resolving gauge\n"
        "slora_catalog_resolving %D\n"
        "# HELP slora_catalog_lookups_total Catalog lookups, by whether the"
        " cache had the entry.\n"
        "# TYPE slora_catalog_lookups_total counter\n"
        "slora_catalog_lookups_total{result=\"hit\"} %uL\n"
        "slora_catalog_lookups_total{result=\"miss\"} %uL\n"
        "# HELP slora_catalog_fetches_total Entries read from Redis.\n"
        "# TYPE slora_catalog_fetches_total counter\n"
        "slora_catalog_fetches_total %uL\n"
        "# HELP slora_catalog_invalidations_total Change events received.\n"
        "# TYPE slora_catalog_invalidations_total counter\n"
        "slora_catalog_invalidations_total %uL\n"
        "# HELP slora_catalog_reconnects_total Reconnections to Redis.\n"
        "# TYPE slora_catalog_reconnects_total counter\n"
        "slora_catalog_reconnects_total %uL\n",
        ngx_http_slora_ld(q->adapter_uploads),
        ngx_http_slora_ld(q->adapter_warmed),
        ngx_http_slora_ld(q->load_errors),
        ngx_http_slora_ld(q->adapters_pinned),
        ngx_http_slora_ld(q->host_bytes),
        ngx_http_slora_ld(q->host_bytes_peak),
        ngx_http_slora_ld(q->host_budget),
        ngx_http_slora_ld(q->pool_bytes),
        ngx_http_slora_ld(q->pages_used_peak),
        ngx_http_slora_ld(q->host_hits),
        ngx_http_slora_ld(q->host_misses),
        ngx_http_slora_ld(q->host_evictions),
        ngx_http_slora_ld(q->prefetched),
        (!ngx_http_slora_ld(q->catalog_redis)
         || ngx_http_slora_ld(q->catalog_up)) ? 1 : 0,
        ngx_http_slora_ld(q->resolving),
        ngx_http_slora_ld(q->catalog_hits),
        ngx_http_slora_ld(q->catalog_misses),
        ngx_http_slora_ld(q->catalog_fetches),
        ngx_http_slora_ld(q->catalog_invalidations),
        ngx_http_slora_ld(q->catalog_reconnects));

    p = ngx_slprintf(p, end,
        "# HELP slora_prefix_cache_pages KV pages the prefix cache indexes,"
        " held by requests or not.\n"
        "# TYPE slora_prefix_cache_pages gauge\n"
        "slora_prefix_cache_pages %D\n"
        "# HELP slora_prefix_cache_lookups_total Admissions that looked"
        " their prompt up in the prefix cache.\n"
        "# TYPE slora_prefix_cache_lookups_total counter\n"
        "slora_prefix_cache_lookups_total %uL\n"
        "# HELP slora_prefix_cache_hit_tokens_total Prompt tokens taken"
        " from the prefix cache instead of computed.\n"
        "# TYPE slora_prefix_cache_hit_tokens_total counter\n"
        "slora_prefix_cache_hit_tokens_total %uL\n"
        "# HELP slora_prefix_cache_evictions_total Pages reclaimed from the"
        " prefix cache.\n"
        "# TYPE slora_prefix_cache_evictions_total counter\n"
        "slora_prefix_cache_evictions_total %uL\n"
        "# HELP slora_prediction_tokens_total Draft tokens from chat's"
        " predictions, taken into answers or computed and not taken.\n"
        "# TYPE slora_prediction_tokens_total counter\n"
        "slora_prediction_tokens_total{kind=\"accepted\"} %uL\n"
        "slora_prediction_tokens_total{kind=\"rejected\"} %uL\n"
        "# HELP slora_lookup_tokens_total Draft tokens from requests' own"
        " prompts and outputs (speculate=lookup), taken into answers or"
        " computed and not taken.\n"
        "# TYPE slora_lookup_tokens_total counter\n"
        "slora_lookup_tokens_total{kind=\"accepted\"} %uL\n"
        "slora_lookup_tokens_total{kind=\"rejected\"} %uL\n"
        "# HELP slora_constraints_total Requests' constraints (schemas,"
        " regexes, grammars, choices, tags): compiled at submit, or taken"
        " as the engine keeps them.\n"
        "# TYPE slora_constraints_total counter\n"
        "slora_constraints_total{kind=\"compiled\"} %uL\n"
        "slora_constraints_total{kind=\"kept\"} %uL\n"
        "# HELP slora_constraints_kept_bytes The compiled constraints the"
        " engine keeps, in bytes.\n"
        "# TYPE slora_constraints_kept_bytes gauge\n"
        "slora_constraints_kept_bytes %uL\n"
        "# HELP slora_constraints_known_total Requests whose constraint"
        " a worker took as compiling, not compiled to check: the engine"
        " kept it compiled.\n"
        "# TYPE slora_constraints_known_total counter\n"
        "slora_constraints_known_total %uL\n",
        ngx_http_slora_ld(q->prefix_pages),
        ngx_http_slora_ld(q->prefix_lookups),
        ngx_http_slora_ld(q->prefix_hit_tokens),
        ngx_http_slora_ld(q->prefix_evictions),
        ngx_http_slora_ld(q->prediction_accepted),
        ngx_http_slora_ld(q->prediction_rejected),
        ngx_http_slora_ld(q->lookup_accepted),
        ngx_http_slora_ld(q->lookup_rejected),
        ngx_http_slora_ld(q->schema_compiles),
        ngx_http_slora_ld(q->schema_hits),
        ngx_http_slora_ld(q->schema_bytes),
        ngx_http_slora_ld(q->schema_known_hits));

    if (ngx_http_slora_store_stats(r, &ss) == NGX_OK) {
        p = ngx_slprintf(p, end,
            "# HELP slora_responses_stored Responses the store keeps"
            " (slora_responses_store).\n"
            "# TYPE slora_responses_stored gauge\n"
            "slora_responses_stored %ui\n"
            "# HELP slora_conversations_stored Conversations the store"
            " keeps (the Conversations API).\n"
            "# TYPE slora_conversations_stored gauge\n"
            "slora_conversations_stored %ui\n"
            "# HELP slora_responses_running Background responses being"
            " answered.\n"
            "# TYPE slora_responses_running gauge\n"
            "slora_responses_running %ui\n"
            "# HELP slora_responses_store_bytes The store's size and its"
            " free pages.\n"
            "# TYPE slora_responses_store_bytes gauge\n"
            "slora_responses_store_bytes{kind=\"size\"} %uz\n"
            "slora_responses_store_bytes{kind=\"free\"} %uz\n"
            "# HELP slora_responses_evictions_total Responses dropped to"
            " make room for others.\n"
            "# TYPE slora_responses_evictions_total counter\n"
            "slora_responses_evictions_total %ui\n"
            "# HELP slora_responses_events_lost_total Background streams"
            " whose events the store had no room for.\n"
            "# TYPE slora_responses_events_lost_total counter\n"
            "slora_responses_events_lost_total %ui\n",
            ss.responses, ss.conversations, ss.running, ss.size, ss.free,
            ss.evictions, ss.events_lost);
    }

    b->last = p;

    return ngx_http_slora_status_send(r, b, "text/plain; version=0.0.4");
}


/* The answer made in b, unless it filled b: a figure cut short would go
 * out as a valid-looking wrong one (the sizes above are fixed; what they
 * hold grows with the code, not the traffic). */
static ngx_int_t
ngx_http_slora_status_send(ngx_http_request_t *r, ngx_buf_t *b,
    const char *type)
{
    if (b->last == b->end) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "slora: the %s answer outgrew its %uz bytes", type,
                      (size_t) (b->end - b->start));
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_slora_send_body(r, NGX_HTTP_OK, b, type);
}


static u_char *
ngx_http_slora_hist(u_char *p, u_char *end, const char *name,
    const char *help, slora_hist_t *h)
{
    return ngx_http_slora_prom_hist(p, end, name, help, h->bucket,
                                    slora_hist_le, SLORA_HIST_BUCKETS,
                                    ngx_http_slora_ld(h->sum_us) / 1e6,
                                    ngx_http_slora_ld(h->count));
}


static u_char *
ngx_http_slora_hist_fine(u_char *p, u_char *end, const char *name,
    const char *help, slora_hist_fine_t *h)
{
    return ngx_http_slora_prom_hist(p, end, name, help, h->bucket,
                                    slora_hist_fine_le,
                                    SLORA_HIST_FINE_BUCKETS,
                                    ngx_http_slora_ld(h->sum_ns) / 1e9,
                                    ngx_http_slora_ld(h->count));
}


/* Prometheus text for n cumulative buckets; le[] has n - 1 bounds, the
 * last bucket is +Inf. */

static u_char *
ngx_http_slora_prom_hist(u_char *p, u_char *end, const char *name,
    const char *help, _Atomic uint64_t *bucket, const double *le, int n,
    double sum, uint64_t count)
{
    int       i;
    uint64_t  cum;

    p = ngx_slprintf(p, end, "# HELP %s %s\n# TYPE %s histogram\n", name,
                     help, name);

    cum = 0;

    for (i = 0; i < n; i++) {
        cum += ngx_http_slora_ld(bucket[i]);

        if (i < n - 1) {
            p = ngx_slprintf(p, end, "%s_bucket{le=\"%.6f\"} %uL\n", name,
                             le[i], cum);

        } else {
            p = ngx_slprintf(p, end, "%s_bucket{le=\"+Inf\"} %uL\n", name,
                             cum);
        }
    }

    return ngx_slprintf(p, end, "%s_sum %.9f\n%s_count %uL\n", name, sum,
                        name, count);
}


/*
 * What the handlers do first: the body discarded, GET or HEAD only, the
 * zone mapped (503 before the engine made it), a buffer of size bytes.
 */
static ngx_int_t
ngx_http_slora_status_start(ngx_http_request_t *r, size_t size,
    slora_queue_t **q, ngx_buf_t **b)
{
    ngx_int_t                    rc;
    ngx_http_slora_main_conf_t  *smcf;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    /* nginx's page, with the Allow header a 405 must have */
    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        if (ngx_http_slora_add_header(r, "Allow", "GET, HEAD") != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_HTTP_NOT_ALLOWED;
    }

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);
    *q = ngx_http_slora_queue(smcf);

    if (*q == NULL) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    *b = ngx_create_temp_buf(r->pool, size);
    if (*b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_slora_status_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_slora_log_handler;

    return NGX_OK;
}


static ngx_int_t
ngx_http_slora_log_handler(ngx_http_request_t *r)
{
    ngx_uint_t                   status;
    slora_queue_t               *q;
    ngx_http_slora_loc_conf_t   *slcf;
    ngx_http_slora_main_conf_t  *smcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_slora_module);

    if (slcf->api == NGX_HTTP_SLORA_API_NONE) {
        return NGX_OK;
    }

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);
    q = ngx_http_slora_queue(smcf);

    if (q == NULL) {
        return NGX_OK;
    }

    status = r->headers_out.status;

    if (r->connection->error && !r->header_sent) {
        status = NGX_HTTP_CLIENT_CLOSED_REQUEST;
    }

    slora_queue_count_status(q, (int) status);

    return NGX_OK;
}
