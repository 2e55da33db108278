/*
 * slora_engine_log.c: the engine's step log, one CSV line a step, for
 * finding where a serving run's time went: $SLORA_STEP_LOG names the
 * file (appended to, a line at a time, made 0644; in nginx, `env
 * SLORA_STEP_LOG=/path;` reaches the engine process, which runs as
 * nginx's user: the file must be writable by it). Unset, nothing is
 * written and nothing is measured beyond what a step measures anyway; a
 * file that cannot be opened is said on stderr (nginx's error log) and
 * the engine runs without.
 *
 * The one idea: the same line from any driver of the engine (the nginx
 * engine process, `slora replay`, `slora bench`), so two runs of one
 * workload compare step by step: when (ms since the engine started),
 * the host's part of the step before the forward (catalog, prefetch,
 * plan, uploads), the forward with its sampling, the plan's tokens, the
 * scheduler's queues after it, and the requests refused in it; then the
 * host's part in four: installing what the loaders read (and the host
 * tier's images that drops), resolving requests and asking the loaders
 * (with a second round of installs), the plan (admission's own reads
 * and uploads), the warm uploads; last, the device's part of the
 * forward (slora_backend_t.device_ns; 0 on the CPU), so run_ms minus it
 * is the host's share of the forward, and whether the forward captured a
 * new decode graph (slora_backend_t.captured: 1 or 0), which costs the
 * host every launch of the step where a replay costs one, and the part
 * of the forward spent making GEMM plans for shapes new to the backend
 * (slora_backend_t.setup_ns; 0 on the CPU), which a cold step pays;
 * last, the step's attention work (slora_sched_step_t.n_pairs) and the
 * forward's time in attention where the backend measures it
 * (slora_backend_t.attention_ns; 0 on the GPU), which the SLO policy's
 * step model reads; and the part of the forward's time the host spent
 * after it on the rows it works out (slora_engine_host.c: log-
 * probabilities, draws with penalties or biases, JSON masks).
 *
 *   ms,host_ms,run_ms,items,prefill,decode,running,waiting,failed,
 *   install_ms,resolve_ms,plan_ms,warm_ms,device_ms,captured,setup_ms,
 *   pairs,attention_ms,rows_ms
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "slora_engine_int.h"


void
slora_engine_log_open(slora_engine_t *e)
{
    int           fd;
    const char   *path;
    struct stat   st;

    e->step_log = NULL;
    e->log_t0 = slora_now_ns();

    path = getenv("SLORA_STEP_LOG");
    if (path == NULL || path[0] == '\0') {
        return;
    }

    /* a mode of its own: a daemonized nginx runs with umask 0 */
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

    if (fd == -1 || fstat(fd, &st) == -1
        || (e->step_log = fdopen(fd, "a")) == NULL)
    {
        /* stderr: under nginx, the error log */
        fprintf(stderr, "slora engine: SLORA_STEP_LOG \"%s\": %s; no step "
                "log\n", path, strerror(errno));

        if (fd != -1) {
            close(fd);
        }

        return;
    }

    /* a line at a time: `tail -f` follows it, a killed engine loses none */
    setvbuf(e->step_log, NULL, _IOLBF, 0);

    if (st.st_size == 0) {
        fputs("ms,host_ms,run_ms,items,prefill,decode,running,waiting,"
              "failed,install_ms,resolve_ms,plan_ms,warm_ms,device_ms,"
              "captured,setup_ms,pairs,attention_ms,rows_ms\n",
              e->step_log);
    }
}


void
slora_engine_log_step(slora_engine_t *e, const slora_sched_step_t *step,
    const slora_engine_times_t *t)
{
    if (e->step_log == NULL) {
        return;
    }

    fprintf(e->step_log, "%.3f,%.3f,%.3f,%d,%d,%d,%d,%d,%d,%.3f,%.3f,%.3f,"
            "%.3f,%.3f,%d,%.3f,%lld,%.3f,%.3f\n",
            (double) (t->start - e->log_t0) / 1e6,
            (double) (t->run - t->start) / 1e6,
            (double) (t->end - t->run) / 1e6, step->n_items, step->n_prefill,
            step->n_decode, slora_sched_running(e->sched),
            slora_sched_waiting(e->sched), step->n_failed,
            (double) (t->installed - t->start) / 1e6,
            (double) (t->resolved - t->installed) / 1e6,
            (double) (t->planned - t->resolved) / 1e6,
            (double) (t->run - t->planned) / 1e6,
            (double) e->last_step_device_ns / 1e6, e->last_step_captured,
            (double) e->last_step_setup_ns / 1e6,
            (long long) step->n_pairs,
            (double) e->last_step_attention_ns / 1e6,
            (double) e->last_step_rows_ns / 1e6);
}


void
slora_engine_log_close(slora_engine_t *e)
{
    if (e->step_log != NULL) {
        fclose(e->step_log);
        e->step_log = NULL;
    }
}
