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

/// The peer credentials SO_PEERCRED returns (struct ucred, which glibc shows only under _GNU_SOURCE).
struct sriovd_peer_credentials {
    pid_t pid;
    uid_t uid;
    gid_t gid;
};
#endif
