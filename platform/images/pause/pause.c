/*
 * The pod sandbox's process (the kubelet's "pause" image): it holds the pod's namespaces, sleeps
 * until SIGTERM or SIGINT, and, as PID 1 of the pod's PID namespace, reaps every orphaned child
 * so none stays a zombie. Static, no libc features beyond signals and wait.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal = 0;

static void on_stop(int sig) { stop_signal = sig; }

static void on_child(int sig) {
    (void)sig;
    int saved = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

static int handle(int sig, void (*handler)(int), int flags) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = handler;
    action.sa_flags = flags;
    sigemptyset(&action.sa_mask);
    return sigaction(sig, &action, NULL);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        puts("flotilla pause 3.10.1");
        return 0;
    }
    if (getpid() != 1) {
        fputs("pause: warning: not PID 1, orphans are not re-parented to this process\n", stderr);
    }
    if (handle(SIGTERM, on_stop, 0) || handle(SIGINT, on_stop, 0) ||
        handle(SIGCHLD, on_child, SA_NOCLDSTOP | SA_RESTART)) {
        perror("pause: sigaction");
        return 1;
    }
    while (!stop_signal) {
        pause();
    }
    fprintf(stderr, "pause: shutting down on signal %d\n", (int)stop_signal);
    return 0;
}
