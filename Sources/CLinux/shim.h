#ifndef SRIOVD_CLINUX_SHIM_H
#define SRIOVD_CLINUX_SHIM_H
// Linux headers that Swift's Glibc module does not bring. No _GNU_SOURCE here: defining it would give
// fd_set and friends a definition that differs from Glibc's, and modules importing both would not build.
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
#include <linux/if_ether.h>
#include <sys/prctl.h>
#include <malloc.h>

/// The peer credentials SO_PEERCRED returns (struct ucred, which glibc shows only under _GNU_SOURCE).
struct sriovd_peer_credentials {
    pid_t pid;
    uid_t uid;
    gid_t gid;
};

/// Names the calling thread (what `top -H` and /proc/PID/task/TID/comm show; the kernel keeps 15 bytes).
/// prctl is variadic, which Swift cannot call.
static inline int sriovd_set_thread_name(const char *name) {
    return prctl(PR_SET_NAME, (unsigned long)name, 0UL, 0UL, 0UL);
}
/// setns(2), which glibc declares only under _GNU_SOURCE (see above). The prototype is glibc's own.
int setns(int fd, int nstype);
#endif
