/*
 * ngx_http_slora_module.c: the module's directives (slora_engine's
 * parameters in ngx_http_slora_engine_conf.c), their configuration
 * structs and merging, and the hooks that run at configuration time in the
 * master: postconfiguration adds the shared zone and makes the engine's
 * eventfds, init_module spawns (or keeps) the engine process,
 * exit_process lets go of eventfd connections.
 *
 * The one idea: everything the engine process depends on (slora_engine,
 * slora_adapters, slora_catalog) lives at http level and is hashed; a
 * reload with the same hash keeps the running engine and its loaded
 * model, any other reload starts a new engine on a new zone (the zone's
 * name carries the hash), so an old engine never shares a ring with a new
 * one. The hash takes the model's and the tokenizer's files as they are
 * on disk (inode, size, time), not only their paths: a model replaced in
 * place gets a new engine, not the old one beside the new tokenizer.
 */

#include "ngx_http_slora_module.h"


static ngx_int_t ngx_http_slora_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_slora_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_slora_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_slora_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_slora_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_slora_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static uint32_t ngx_http_slora_files_identity(ngx_conf_t *cf,
    ngx_str_t *path);
static char *ngx_http_slora_adapters(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_slora_catalog(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_slora_catalog_roots(ngx_conf_t *cf,
    ngx_http_slora_main_conf_t *smcf, ngx_str_t *list);
static char *ngx_http_slora_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_slora_chat_template(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_slora_set_handler(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_slora_deadline_check(ngx_conf_t *cf, void *post,
    void *data);
static ngx_int_t ngx_http_slora_init_module(ngx_cycle_t *cycle);
static void ngx_http_slora_exit_process(ngx_cycle_t *cycle);


static ngx_conf_post_handler_pt  ngx_http_slora_deadline_p =
    ngx_http_slora_deadline_check;


static ngx_command_t  ngx_http_slora_commands[] = {

    { ngx_string("slora_engine"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_slora_engine,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("slora_adapters"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_slora_adapters,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("slora_catalog"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_slora_catalog,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("slora_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_slora_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("slora_tenant"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_slora_loc_conf_t, tenant),
      NULL },

    { ngx_string("slora_cache_salt"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_slora_loc_conf_t, cache_salt),
      NULL },

    { ngx_string("slora_chat_template"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_slora_chat_template,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("slora_reasoning"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_slora_loc_conf_t, reasoning),
      NULL },

    { ngx_string("slora_deadline"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_slora_loc_conf_t, deadline),
      &ngx_http_slora_deadline_p },

    { ngx_string("slora_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_slora_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) ngx_http_slora_status_handler },

    { ngx_string("slora_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_slora_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) ngx_http_slora_metrics_handler },

    { ngx_string("slora_health"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_slora_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) ngx_http_slora_health_handler },

    { ngx_string("slora_admin"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_slora_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) ngx_http_slora_admin_handler },

    { ngx_string("slora_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_slora_main_conf_t, thread_pool_name),
      NULL },

    { ngx_string("slora_responses_store"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_slora_store_conf,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_slora_module_ctx = {
    ngx_http_slora_preconfiguration,       /* preconfiguration */
    ngx_http_slora_postconfiguration,      /* postconfiguration */

    ngx_http_slora_create_main_conf,       /* create main configuration */
    ngx_http_slora_init_main_conf,         /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_slora_create_loc_conf,        /* create location configuration */
    ngx_http_slora_merge_loc_conf          /* merge location configuration */
};


ngx_module_t  ngx_http_slora_module = {
    NGX_MODULE_V1,
    &ngx_http_slora_module_ctx,            /* module context */
    ngx_http_slora_commands,               /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_slora_init_module,            /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_slora_exit_process,           /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_slora_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_slora_add_variables(cf);
}


static ngx_int_t
ngx_http_slora_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_slora_main_conf_t  *smcf;

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_slora_module);

    if (!smcf->enabled) {
        return NGX_OK;
    }

    if (ngx_http_slora_zone_add(cf, smcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_slora_engine_prepare(cf, smcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_slora_status_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_slora_filter_init(cf);
}


static void *
ngx_http_slora_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_slora_main_conf_t  *smcf;

    smcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_slora_main_conf_t));
    if (smcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     smcf->enabled = 0;
     *     smcf->model = { 0, NULL };
     *     smcf->adapter_dir = { 0, NULL };
     *     smcf->redis_url = { 0, NULL };
     *     smcf->roots = NULL;
     *     smcf->tokenizer = NULL;
     *     smcf->zone = NULL;
     */

    smcf->threads = NGX_CONF_UNSET;
    smcf->tensor_parallel = NGX_CONF_UNSET;
    smcf->pool = NGX_CONF_UNSET_SIZE;
    smcf->max_batch_tokens = NGX_CONF_UNSET;
    smcf->max_running = NGX_CONF_UNSET;
    smcf->max_ctx = NGX_CONF_UNSET;
    smcf->slots = NGX_CONF_UNSET;
    smcf->max_tokens = NGX_CONF_UNSET;
    smcf->top_logprobs = NGX_CONF_UNSET;
    smcf->slo_ttft = NGX_CONF_UNSET_MSEC;
    smcf->fair_prefill = NGX_CONF_UNSET;
    smcf->fair_decode = NGX_CONF_UNSET;
    smcf->prefix_cache = NGX_CONF_UNSET;
    smcf->draft_lookup = NGX_CONF_UNSET;
    smcf->lookup_requests = NGX_CONF_UNSET;
    smcf->pinned_max = NGX_CONF_UNSET;
    smcf->host_cache = NGX_CONF_UNSET_SIZE;
    smcf->prefetch = NGX_CONF_UNSET;
    smcf->preload = NGX_CONF_UNSET;
    smcf->prefetch_threads = NGX_CONF_UNSET;
    smcf->catalog_timeout = NGX_CONF_UNSET_MSEC;

    return smcf;
}


static char *
ngx_http_slora_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_slora_main_conf_t  *smcf = conf;

    u_char      *p, *end, *buf;
    size_t       len;
    ngx_str_t   *root;
    ngx_uint_t   i;

    ngx_conf_init_value(smcf->threads, 0);
    ngx_conf_init_value(smcf->tensor_parallel, 1);
    ngx_conf_init_size_value(smcf->pool, 0);
    ngx_conf_init_value(smcf->max_batch_tokens, 0);
    ngx_conf_init_value(smcf->max_running, 0);
    ngx_conf_init_value(smcf->max_ctx, 4096);
    ngx_conf_init_value(smcf->slots, 64);
    ngx_conf_init_value(smcf->max_tokens, 4096);
    ngx_conf_init_value(smcf->top_logprobs, 5);
    ngx_conf_init_msec_value(smcf->slo_ttft, 0);
    ngx_conf_init_value(smcf->fair_prefill, 1);
    ngx_conf_init_value(smcf->fair_decode, 2);
    ngx_conf_init_value(smcf->prefix_cache, 1);
    ngx_conf_init_value(smcf->draft_lookup, 0);
    ngx_conf_init_value(smcf->lookup_requests, 0);
    ngx_conf_init_value(smcf->pinned_max, 50);
    ngx_conf_init_size_value(smcf->host_cache, 0);
    ngx_conf_init_value(smcf->prefetch, 1);
    ngx_conf_init_value(smcf->preload, 0);
    ngx_conf_init_value(smcf->prefetch_threads, 0);
    ngx_conf_init_msec_value(smcf->catalog_timeout, 0);

    if (smcf->device.len == 0) {
        ngx_str_set(&smcf->device, "cpu");
    }

    if (smcf->weights.len == 0) {
        ngx_str_set(&smcf->weights, "native");
    }

    if (smcf->schedule.len == 0) {
        ngx_str_set(&smcf->schedule, "fcfs");
    }

    if (!smcf->enabled) {
        return NGX_CONF_OK;
    }

    if (ngx_http_slora_encode_conf(cf, smcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (smcf->max_tokens > smcf->max_ctx) {
        smcf->max_tokens = smcf->max_ctx;
    }

    if (smcf->redis_url.len && smcf->roots == NULL
        && smcf->adapter_dir.len == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "slora_catalog: roots=DIR is required without"
                           " \"slora_adapters dir=\" (adapter paths in"
                           " Redis must lie under a root)");
        return NGX_CONF_ERROR;
    }

    if (smcf->redis_url.len && smcf->registry.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "slora_adapters: registry= keeps the folder "
                           "catalog's run-time registrations; with "
                           "slora_catalog Redis keeps them: drop one");
        return NGX_CONF_ERROR;
    }

    /* every string whole (a cut one would leave out what follows it,
     * the files' identity last), and the numbers */
    len = smcf->model.len + smcf->device.len + smcf->weights.len
          + smcf->adapter_dir.len + smcf->redis_url.len + smcf->cuda_lib.len
          + smcf->tokenizer_path.len + smcf->schedule.len
          + smcf->registry.len + 1024;

    if (smcf->roots != NULL) {
        root = smcf->roots->elts;
        for (i = 0; i < smcf->roots->nelts; i++) {
            len += 1 + root[i].len;
        }
    }

    buf = ngx_pnalloc(cf->temp_pool, len);
    if (buf == NULL) {
        return NGX_CONF_ERROR;
    }

    end = buf + len;
    p = ngx_slprintf(buf, end,
                     "%V|%V|%V|%i|%uz|%i|%i|%i|%i|%i|%V|%uz|%i|%V|%M",
                     &smcf->model, &smcf->device, &smcf->weights,
                     smcf->threads, smcf->pool,
                     smcf->max_batch_tokens, smcf->max_running,
                     smcf->max_ctx, smcf->slots, smcf->max_tokens,
                     &smcf->adapter_dir, smcf->host_cache, smcf->prefetch,
                     &smcf->redis_url, smcf->catalog_timeout);

    p = ngx_slprintf(p, end, "|%V|%V|%i|%i|%i|%V", &smcf->cuda_lib,
                     &smcf->tokenizer_path, smcf->tensor_parallel,
                     smcf->preload, smcf->prefetch_threads,
                     &smcf->registry);

    p = ngx_slprintf(p, end, "|%V|%M|%i|%i|%i|%i|%i|%i|%i", &smcf->schedule,
                     smcf->slo_ttft, smcf->fair_prefill, smcf->fair_decode,
                     smcf->top_logprobs, smcf->prefix_cache,
                     smcf->draft_lookup, smcf->lookup_requests,
                     smcf->pinned_max);

    if (smcf->roots != NULL) {
        root = smcf->roots->elts;
        for (i = 0; i < smcf->roots->nelts; i++) {
            p = ngx_slprintf(p, end, "|%V", &root[i]);
        }
    }

    p = ngx_slprintf(p, end, "|%08xD|%08xD",
                     ngx_http_slora_files_identity(cf, &smcf->model),
                     ngx_http_slora_files_identity(cf,
                                                   &smcf->tokenizer_path));

    smcf->hash = ngx_crc32_long(buf, p - buf);

    return NGX_CONF_OK;
}


static void *
ngx_http_slora_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_slora_loc_conf_t  *slcf;

    slcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_slora_loc_conf_t));
    if (slcf == NULL) {
        return NULL;
    }

    slcf->api = NGX_CONF_UNSET_UINT;
    slcf->tenant = NGX_CONF_UNSET_PTR;
    slcf->cache_salt = NGX_CONF_UNSET_PTR;
    slcf->chat_template = NGX_CONF_UNSET;
    slcf->reasoning = NGX_CONF_UNSET;
    slcf->deadline = NGX_CONF_UNSET_MSEC;

    return slcf;
}


static char *
ngx_http_slora_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_slora_loc_conf_t  *prev = parent;
    ngx_http_slora_loc_conf_t  *conf = child;

    /* an `if` block or a nested location of an API location answers its
     * errors in the API's shape too (ngx_http_slora_filter.c); only the
     * location that says slora_api serves it */
    ngx_conf_merge_uint_value(conf->api, prev->api, NGX_HTTP_SLORA_API_NONE);
    ngx_conf_merge_ptr_value(conf->tenant, prev->tenant, NULL);
    ngx_conf_merge_ptr_value(conf->cache_salt, prev->cache_salt, NULL);
    ngx_conf_merge_value(conf->chat_template, prev->chat_template,
                         NGX_HTTP_SLORA_CHAT_AUTO);
    ngx_conf_merge_value(conf->reasoning, prev->reasoning, 0);
    ngx_conf_merge_msec_value(conf->deadline, prev->deadline, 120000);

    return NGX_CONF_OK;
}


/*
 * What the hash knows of a model's (or tokenizer's) files: the inode,
 * size and modification time of the file, or of each entry of the
 * folder, as a CRC; 0 for no path, a "random:" spec, or a path that
 * cannot be read (the tokenizer's load says why).
 */

static uint32_t
ngx_http_slora_files_identity(ngx_conf_t *cf, ngx_str_t *path)
{
    u_char          *name, *p, line[NGX_MAX_PATH + 64];
    size_t           len;
    uint32_t         crc, entries;
    ngx_str_t        folder;
    ngx_dir_t        dir;
    ngx_file_info_t  fi;

    if (path->len == 0
        || (path->len > 7 && ngx_strncmp(path->data, "random:", 7) == 0))
    {
        return 0;
    }

    name = ngx_pnalloc(cf->temp_pool, path->len + 1);
    if (name == NULL) {
        return 0;
    }

    (void) ngx_cpystrn(name, path->data, path->len + 1);

    if (ngx_file_info(name, &fi) == NGX_FILE_ERROR) {
        return 0;
    }

    ngx_crc32_init(crc);

    p = ngx_slprintf(line, line + sizeof(line), "%uL %O %T",
                     (uint64_t) ngx_file_uniq(&fi), ngx_file_size(&fi),
                     ngx_file_mtime(&fi));
    ngx_crc32_update(&crc, line, p - line);

    /*
     * a folder's own time misses a file rewritten in place: each entry
     * counts, summed so that the order readdir gives does not
     */
    entries = 0;
    folder.len = path->len;
    folder.data = name;

    if (ngx_is_dir(&fi) && ngx_open_dir(&folder, &dir) == NGX_OK) {

        while (ngx_read_dir(&dir) == NGX_OK) {
            len = ngx_de_namelen(&dir);

            if (len + path->len + 2 > NGX_MAX_PATH) {
                continue;
            }

            (void) ngx_sprintf(line, "%V/%*s%Z", path, len,
                               ngx_de_name(&dir));

            if (ngx_file_info(line, &fi) == NGX_FILE_ERROR
                || !ngx_is_file(&fi))
            {
                continue;
            }

            p = ngx_slprintf(line + path->len + 1 + len,
                             line + sizeof(line), " %uL %O %T",
                             (uint64_t) ngx_file_uniq(&fi),
                             ngx_file_size(&fi), ngx_file_mtime(&fi));
            entries += ngx_crc32_long(line, p - line);
        }

        (void) ngx_close_dir(&dir);
    }

    ngx_crc32_update(&crc, (u_char *) &entries, sizeof(entries));
    ngx_crc32_final(crc);

    return crc;
}


static char *
ngx_http_slora_adapters(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_slora_main_conf_t  *smcf = conf;

    off_t        size;
    ngx_int_t    n;
    ngx_str_t   *value, s;
    ngx_uint_t   i;

    if (smcf->adapter_dir.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "dir=", 4) == 0) {
            smcf->adapter_dir.data = value[i].data + 4;
            smcf->adapter_dir.len = value[i].len - 4;

            if (smcf->adapter_dir.len == 0) {
                goto invalid;
            }

            /* "random:n=...": a catalog of random adapters, no folder */
            if (!(smcf->adapter_dir.len > 7
                  && ngx_strncmp(smcf->adapter_dir.data, "random:", 7) == 0)
                && ngx_conf_full_name(cf->cycle, &smcf->adapter_dir, 0)
                   != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            /* the folder, an adapter's name and its longest file name
             * fit the engine's paths (SLORA_ADAPTER_PATH_LEN) */
            if (smcf->adapter_dir.len
                > SLORA_ADAPTER_FOLDER_MAX - SLORA_QUEUE_ADAPTER_LEN)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "slora_adapters: dir= is %uz bytes long,"
                                   " more than %uz (with an adapter's name"
                                   " and file name after it, its files'"
                                   " paths must fit %d bytes)",
                                   smcf->adapter_dir.len,
                                   (size_t) (SLORA_ADAPTER_FOLDER_MAX
                                             - SLORA_QUEUE_ADAPTER_LEN),
                                   SLORA_ADAPTER_PATH_LEN);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "host_cache=", 11) == 0) {
            s.data = value[i].data + 11;
            s.len = value[i].len - 11;
            size = ngx_parse_offset(&s);

            if (size == NGX_ERROR || size == 0) {
                goto invalid;
            }

            smcf->host_cache = (size_t) size;
            continue;
        }

        if (ngx_strcmp(value[i].data, "prefetch=on") == 0) {
            smcf->prefetch = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "prefetch=off") == 0) {
            smcf->prefetch = 0;
            continue;
        }

        if (ngx_strncmp(value[i].data, "prefetch_threads=", 17) == 0) {
            n = ngx_atoi(value[i].data + 17, value[i].len - 17);

            if (n == NGX_ERROR || n < 1 || n > 16) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "slora_adapters: \"%V\": the prefetch"
                                   " threads are 1 to 16", &value[i]);
                return NGX_CONF_ERROR;
            }

            smcf->prefetch_threads = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "registry=", 9) == 0) {
            smcf->registry.data = value[i].data + 9;
            smcf->registry.len = value[i].len - 9;

            /* the names beside it (.PID.tmp, .unread) fit the engine's
             * paths */
            if (smcf->registry.len == 0
                || ngx_conf_full_name(cf->cycle, &smcf->registry, 0)
                   != NGX_OK
                || smcf->registry.len + sizeof(".4294967295.tmp") > PATH_MAX)
            {
                goto invalid;
            }

            continue;
        }

        if (ngx_strcmp(value[i].data, "preload=on") == 0) {
            smcf->preload = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "preload=off") == 0) {
            smcf->preload = 0;
            continue;
        }

        goto invalid;
    }

    if (smcf->adapter_dir.data == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "slora_adapters: dir=PATH is required");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "slora_adapters: invalid parameter \"%V\"",
                       &value[i]);

    return NGX_CONF_ERROR;
}


/*
 * slora_catalog redis://HOST:PORT[/DB] [roots=DIR[,DIR...]] [timeout=MS]:
 * the catalog in Redis instead of the adapter directory. Checked here so
 * that nginx -t names a bad URL; the engine connects on its own thread.
 */
static char *
ngx_http_slora_catalog(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_slora_main_conf_t  *smcf = conf;

    int          port, db;
    char        *url, *host, *rv;
    ngx_str_t   *value, s;
    ngx_int_t    ms;
    ngx_uint_t   i;
    slora_err_t  err;

    if (smcf->redis_url.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len <= 8
        || ngx_strncmp(value[1].data, "redis://", 8) != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "slora_catalog: \"%V\" is not"
                           " redis://HOST:PORT[/DB]", &value[1]);
        return NGX_CONF_ERROR;
    }

    url = ngx_pnalloc(cf->pool, value[1].len + 1);
    if (url == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(url, value[1].data, value[1].len);
    url[value[1].len] = '\0';

    host = NULL;
    err.msg[0] = '\0';

    if (slora_catalog_url(url, &host, &port, &db, &err) != SLORA_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "slora_catalog: \"%V\": %s", &value[1], err.msg);
        return NGX_CONF_ERROR;
    }

    free(host);
    smcf->redis_url = value[1];

    for (i = 2; i < cf->args->nelts; i++) {

        if (value[i].len > 6 && ngx_strncmp(value[i].data, "roots=", 6) == 0)
        {
            if (smcf->roots != NULL) {
                goto invalid;
            }

            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            rv = ngx_http_slora_catalog_roots(cf, smcf, &s);
            if (rv != NGX_CONF_OK) {
                return rv;
            }

            continue;
        }

        if (value[i].len > 8
            && ngx_strncmp(value[i].data, "timeout=", 8) == 0)
        {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            /* a bare number is seconds, as nginx's times are */
            ms = ngx_parse_time(&s, 0);
            if (ms == NGX_ERROR || ms == 0 || ms > 60000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "slora_catalog: timeout=\"%V\" must be a"
                                   " time from 1ms to 60s (\"500ms\", \"2s\")",
                                   &s);
                return NGX_CONF_ERROR;
            }

            smcf->catalog_timeout = (ngx_msec_t) ms;
            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "slora_catalog: invalid parameter \"%V\"",
                       &value[i]);

    return NGX_CONF_ERROR;
}


/* roots=DIR[,DIR...]: each made absolute against the prefix, and a
 * directory now. */
static char *
ngx_http_slora_catalog_roots(ngx_conf_t *cf, ngx_http_slora_main_conf_t *smcf,
    ngx_str_t *list)
{
    u_char           *p, *last, *comma;
    ngx_str_t        *root;
    ngx_file_info_t   fi;

    smcf->roots = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
    if (smcf->roots == NULL) {
        return NGX_CONF_ERROR;
    }

    p = list->data;
    last = list->data + list->len;

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        if (comma == p) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "slora_catalog: empty folder in roots=\"%V\"",
                               list);
            return NGX_CONF_ERROR;
        }

        root = ngx_array_push(smcf->roots);
        if (root == NULL) {
            return NGX_CONF_ERROR;
        }

        /* NUL-terminated, for ngx_file_info() and the engine */
        root->len = comma - p;
        root->data = ngx_pnalloc(cf->pool, root->len + 1);
        if (root->data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(root->data, p, root->len);
        root->data[root->len] = '\0';

        if (ngx_conf_full_name(cf->cycle, root, 0) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        if (ngx_file_info(root->data, &fi) == NGX_FILE_ERROR
            || !ngx_is_dir(&fi))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                               "slora_catalog: root \"%V\" is not a"
                               " folder", root);
            return NGX_CONF_ERROR;
        }

        p = comma + 1;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_slora_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_slora_loc_conf_t  *slcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (slcf->api != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len != 6 || ngx_strncmp(value[1].data, "openai", 6) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "slora_api: unknown API \"%V\" (only \"openai\")",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_slora_set_handler(cf, cmd, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_slora_api_handler;
    slcf->api = NGX_HTTP_SLORA_API_OPENAI;

    return NGX_CONF_OK;
}


static char *
ngx_http_slora_chat_template(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_slora_loc_conf_t  *slcf = conf;

    char          name[32];
    ngx_str_t    *value;
    slora_chat_e  tmpl;

    if (slcf->chat_template != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 4 && ngx_strncmp(value[1].data, "auto", 4) == 0) {
        slcf->chat_template = NGX_HTTP_SLORA_CHAT_AUTO;
        return NGX_CONF_OK;
    }

    if (value[1].len < sizeof(name)) {
        ngx_memcpy(name, value[1].data, value[1].len);
        name[value[1].len] = '\0';

        if (slora_chat_from_name(name, &tmpl) == SLORA_OK) {
            slcf->chat_template = tmpl;
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "slora_chat_template: unknown template \"%V\""
                       " (chatml, llama2, llama3, llama3.1, llama3.2, "
                       "mistral, mistral-v3-tekken, mistral-v7-tekken, "
                       "deepseek-r1 or auto)",
                       &value[1]);

    return NGX_CONF_ERROR;
}


static char *
ngx_http_slora_set_handler(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t    *clcf;
    ngx_http_slora_main_conf_t  *smcf;

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_slora_module);

    if (!smcf->enabled) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" needs \"slora_engine\" earlier in the http"
                           " block", &cmd->name);
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    /* one content handler a location: a second would replace the first */
    if (clcf->handler != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": this location already has a content"
                           " handler (slora_api, slora_status, slora_metrics,"
                           " slora_health, slora_admin, proxy_pass...): one"
                           " a location", &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (cmd->post != NULL) {
        clcf->handler = (ngx_http_handler_pt) cmd->post;
    }

    return NGX_CONF_OK;
}


/* slora_deadline 0 would fail every request at its first tick */
static char *
ngx_http_slora_deadline_check(ngx_conf_t *cf, void *post, void *data)
{
    ngx_msec_t  *ms = data;

    if (*ms == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "slora_deadline: 0 would fail every request at"
                           " once; give a time (\"120s\")");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_slora_init_module(ngx_cycle_t *cycle)
{
    ngx_int_t                    pid;
    ngx_core_conf_t             *ccf;
    ngx_http_slora_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_slora_module);

    if (smcf == NULL || !smcf->enabled) {
        return NGX_OK;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    if (ngx_test_config) {
        return NGX_OK;
    }

    if (ccf->daemon && !ngx_daemonized && !ngx_inherited
        && ngx_is_init_cycle(cycle->old_cycle))
    {
        /*
         * "daemon on" (Debian's systemd unit): nginx daemonizes after
         * init_module, and the process that spawned the engine would exit,
         * leaving it without the master that reaps and respawns it; so the
         * first start daemonizes here, before the spawn, as main() would
         * have, and main() is told it is done
         */
        pid = ngx_daemon(cycle->log);

        if (pid == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (pid > 0) {
            /*
             * the parent, where nginx's own ngx_daemon() has not exited
             * in it: Debian's (its pid file patch) gives it the daemon's
             * pid to write the pid file with, so that the file is there
             * when systemd reads it after this exit
             */
            ngx_pid = (ngx_pid_t) pid;
            exit(ngx_create_pidfile(&ccf->pid, cycle->log) == NGX_OK ? 0 : 1);
        }

        ngx_daemonized = 1;
        ccf->daemon = 0;
    }

    if (!ccf->master) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "slora: \"master_process off\": nginx respawns no"
                      " process then, so an engine that dies stays dead"
                      " (requests get 503 until nginx restarts)");
    }

    return ngx_http_slora_engine_start(cycle, smcf);
}


static void
ngx_http_slora_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_slora_stream_exit_process();
}
