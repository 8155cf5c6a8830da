/*
 * netdev.c: finish a network device that the parent moved into the
 * container's network namespace (linux.netDevices).  Moving a device drops
 * its addresses, so the planner recorded them beforehand; here, inside the
 * namespace, they are added back and the device is brought up.  The parent
 * never enters the namespace itself: it only moves (and renames) the device
 * with one RTM_NEWLINK from the host side.
 */
#include <errno.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "init.h"

struct addr_req {
	struct nlmsghdr nh;
	struct ifaddrmsg ifa;
	char attrs[64];
};

static void add_attr(struct nlmsghdr *nh, unsigned short type, const void *data, size_t len)
{
	struct rtattr *rta = (struct rtattr *)((char *)nh + NLMSG_ALIGN(nh->nlmsg_len));

	rta->rta_type = type;
	rta->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(rta), data, len);
	nh->nlmsg_len = NLMSG_ALIGN(nh->nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

/* Send one request and read its acknowledgement; returns 0 or -errno. */
static int nl_request(int fd, struct nlmsghdr *nh)
{
	char buf[512];
	struct nlmsghdr *reply = (struct nlmsghdr *)buf;
	ssize_t got;

	if (send(fd, nh, nh->nlmsg_len, 0) < 0)
		return -errno;
	do
		got = recv(fd, buf, sizeof(buf), 0);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return -errno;
	if ((size_t)got < sizeof(*reply) || reply->nlmsg_type != NLMSG_ERROR)
		return -EPROTO;
	return ((struct nlmsgerr *)NLMSG_DATA(reply))->error;
}

/* str: u8 family, u8 prefix length, then 4 (AF_INET) or 16 (AF_INET6) bytes. */
static int add_address(int fd, unsigned ifindex, const struct pstr *str, uint32_t seq)
{
	struct addr_req req;
	unsigned char family, plen;
	size_t alen;
	int err;

	if (str->len < 2)
		return -EINVAL;
	family = (unsigned char)str->s[0];
	plen = (unsigned char)str->s[1];
	alen = family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
	if (!alen || str->len != 2 + alen)
		return -EINVAL;
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
	req.nh.nlmsg_type = RTM_NEWADDR;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
	req.nh.nlmsg_seq = seq;
	req.ifa.ifa_family = family;
	req.ifa.ifa_prefixlen = plen;
	req.ifa.ifa_scope = RT_SCOPE_UNIVERSE;
	req.ifa.ifa_index = ifindex;
	add_attr(&req.nh, IFA_LOCAL, str->s + 2, alen);
	add_attr(&req.nh, IFA_ADDRESS, str->s + 2, alen);
	err = nl_request(fd, &req.nh);
	return err;
}

static int link_up(const char *name)
{
	struct ifreq ifr;
	int fd, err = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		err = -errno;
	} else if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
			err = -errno;
	}
	close(fd);
	return err;
}

int op_netdev(const struct step *s)
{
	const char *name = s->strs[0].s;
	unsigned ifindex;
	int fd, err = 0;

	if (s->strs[0].len == 0 || s->strs[0].len >= IFNAMSIZ)
		return fail(EINVAL, "network device name \"%s\"", name);
	ifindex = if_nametoindex(name);
	if (!ifindex)
		return fail(errno, "network device \"%s\"", name);
	if (s->nstrs > 1) {
		fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
		if (fd < 0)
			return fail(errno, "netlink socket for \"%s\"", name);
		for (unsigned i = 1; i < s->nstrs && !err; i++) {
			err = add_address(fd, ifindex, &s->strs[i], i);
			if (err)
				err = fail(-err, "address %u of network device \"%s\"", i, name);
		}
		close(fd);
		if (err)
			return err;
	}
	err = link_up(name);
	if (err)
		return fail(-err, "bring up network device \"%s\"", name);
	return 0;
}
