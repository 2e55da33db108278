/*
 * redis_server.h: a real redis-server for the catalog's unit tests
 * (test_catalog.c, test_catalog_redis.c): started in the foreground on
 * 127.0.0.1:redis_port with its files under a folder of the test's, no
 * persistence, up once it answers PING; stopped by its pid at the end,
 * at exit and on a fatal signal (woken first: a test may have stopped it
 * with SIGSTOP). redis() connects to it, redis_timeout_s seconds to
 * connect and for each reply. Included by one .c file each.
 */

#ifndef REDIS_SERVER_H
#define REDIS_SERVER_H


#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <hiredis/hiredis.h>

#include "tap.h"


static int    redis_port;
static pid_t  redis_pid = -1;
static int    redis_timeout_s = 1;


static void redis_stop(void);


static redisContext *
redis(void)
{
    redisContext    *c;
    struct timeval   tv;

    tv.tv_sec = redis_timeout_s;
    tv.tv_usec = 0;

    c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
    if (c == NULL || c->err) {
        if (c != NULL) {
            redisFree(c);
        }
        return NULL;
    }

    redisSetTimeout(c, tv);

    return c;
}


/* redis-server on redis_port, its log and files under tmp/redis: 0 once
 * it answers PING (some 5 s at most), -1 if it exits or never does */
static int
redis_start(const char *tmp)
{
    int            i, fd, up;
    char           dir[400], log[500], p[16];
    pid_t          pid;
    redisContext  *c;
    redisReply    *r;

    snprintf(dir, sizeof(dir), "%s/redis", tmp);
    mkdir(dir, 0755);
    snprintf(log, sizeof(log), "%s/redis.log", dir);
    snprintf(p, sizeof(p), "%d", redis_port);

    pid = fork();
    if (pid < 0) {
        return -1;
    }

    if (pid == 0) {
        fd = open("/dev/null", O_RDWR);
        if (fd >= 0) {
            dup2(fd, 0);
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("redis-server", "redis-server", "--port", p, "--bind",
               "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir,
               "--daemonize", "no", "--logfile", log, (char *) NULL);
        _exit(127);
    }

    redis_pid = pid;

    for (i = 0; i < 100; i++) {
        usleep(50000);

        if (waitpid(pid, NULL, WNOHANG) == pid) {
            redis_pid = -1;
            diag("redis-server exited at start (see %s)", log);
            return -1;
        }

        c = redis();
        if (c == NULL) {
            continue;
        }

        r = redisCommand(c, "PING");
        up = r != NULL && r->type == REDIS_REPLY_STATUS;
        if (r != NULL) {
            freeReplyObject(r);
        }
        redisFree(c);

        if (up) {
            return 0;
        }
    }

    redis_stop();

    return -1;
}


static void
redis_stop(void)
{
    if (redis_pid > 0) {
        kill(redis_pid, SIGCONT);
        kill(redis_pid, SIGTERM);
        waitpid(redis_pid, NULL, 0);
        redis_pid = -1;
    }
}


static void
redis_on_fatal(int sig)
{
    if (redis_pid > 0) {
        kill(redis_pid, SIGCONT);
        kill(redis_pid, SIGKILL);
    }

    signal(sig, SIG_DFL);
    raise(sig);
}


#endif /* REDIS_SERVER_H */
