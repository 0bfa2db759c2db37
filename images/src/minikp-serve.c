/* minikp-serve: the server of the minikp/serve-hostname and minikp/echo images, built
 * static so that the images are FROM scratch (no registry needed to build them).
 *
 *   minikp-serve serve-hostname [--port N]   TCP: any HTTP request gets the hostname;
 *                                            UDP: any datagram gets the hostname (as the
 *                                            serve_hostname / agnhost images do)
 *   minikp-serve echo [--port N]             HTTP: hostname, client address and the
 *                                            request's headers (for source-IP labs)
 *   minikp-serve pause                       sleeps until SIGTERM (minikp/pause: holds the
 *                                            pod's network namespace)
 * Default port 9376 (serve-hostname) or 8080 (echo). SIGTERM ends it at once: as PID 1 of
 * a container a default-ignored SIGTERM would make every stop wait out its timeout. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static char host[256];

static int listen_on(int type, int port) {
    int s = socket(AF_INET, type, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); exit(1); }
    if (type == SOCK_STREAM && listen(s, 128) < 0) { perror("listen"); exit(1); }
    return s;
}

static void answer(int c, const struct sockaddr_in *peer, int echo) {
    char req[8192], body[12288];
    size_t n = 0;
    ssize_t r;
    alarm(10);  /* a client that never finishes its request does not hold this child */
    while (n < sizeof req - 1 && (r = read(c, req + n, sizeof req - 1 - n)) > 0) {
        n += r;
        req[n] = 0;
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n")) break;
    }
    req[n] = 0;
    int len;
    if (echo) {
        char *end = strstr(req, "\r\n\r\n");
        if (end) *end = 0;
        len = snprintf(body, sizeof body, "pod: %s\nclient: %s:%d\n\n%s\n", host,
                       inet_ntoa(peer->sin_addr), ntohs(peer->sin_port), req);
    } else {
        len = snprintf(body, sizeof body, "%s\n", host);
    }
    if (len > (int)sizeof body - 1) len = sizeof body - 1;
    /* X-Minikp-Client: the address this pod saw, as minikp's built-in server says it
     * (checks read it for sourceIP: original | masqueraded) */
    dprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Length: %d\r\nX-Minikp-Client: %s:%d\r\nConnection: close\r\n\r\n",
            len, inet_ntoa(peer->sin_addr), ntohs(peer->sin_port));
    if (strncmp(req, "HEAD ", 5) != 0) write(c, body, len);
    shutdown(c, SHUT_WR);
}

static void on_term(int sig) { (void)sig; _exit(0); }

int main(int argc, char **argv) {
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    if (argc > 1 && strcmp(argv[1], "pause") == 0)
        for (;;) pause();
    int echo = argc > 1 && strcmp(argv[1], "echo") == 0;
    int port = echo ? 8080 : 9376;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) port = atoi(argv[++i]);
        else if (strncmp(argv[i], "--port=", 7) == 0) port = atoi(argv[i] + 7);
    }
    gethostname(host, sizeof host - 1);
    signal(SIGCHLD, SIG_IGN);  /* children are reaped by the kernel */
    struct pollfd fds[2] = {{.fd = listen_on(SOCK_STREAM, port), .events = POLLIN},
                            {.fd = echo ? -1 : listen_on(SOCK_DGRAM, port), .events = POLLIN}};
    printf("%s: serving %s on port %d\n", host, echo ? "echo (HTTP)" : "hostname (TCP, UDP)", port);
    fflush(stdout);
    for (;;) {
        if (poll(fds, 2, -1) < 0) continue;
        if (fds[0].revents & POLLIN) {
            struct sockaddr_in peer;
            socklen_t pl = sizeof peer;
            int c = accept(fds[0].fd, (struct sockaddr *)&peer, &pl);
            if (c < 0) continue;
            if (fork() == 0) { close(fds[0].fd); answer(c, &peer, echo); _exit(0); }
            close(c);
        }
        if (fds[1].fd >= 0 && (fds[1].revents & POLLIN)) {
            char buf[2048];
            struct sockaddr_in peer;
            socklen_t pl = sizeof peer;
            if (recvfrom(fds[1].fd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &pl) >= 0)
                sendto(fds[1].fd, host, strlen(host), 0, (struct sockaddr *)&peer, pl);
        }
    }
}
