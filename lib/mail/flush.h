/* SPDX-License-Identifier: MIT */
/*
 * Asking the queue manager to retry deferred mail now: the one request
 * layout that `tern flush`, ternqueue -f / -s and smtpd's ETRN (RFC 1985)
 * send to private/qmgr, and qmgr reads:
 *
 *   {request=flush}                            every deferred message
 *   {request=flush, domain=D}                  those with a pending
 *                                              recipient in D
 *   {request=flush, domain=D, subdomains=1}    in D or below it (ETRN @D)
 *   {request=flush, queue_id=ID}               deferred/ID (ternqueue -i)
 *
 * Sent as a notice (no id) the request gets no answer; with an id (an
 * attr_client request) qmgr answers {status=ok} once it took it, which is
 * what lets smtpd reply 250 only after qmgr has the request.
 */
#ifndef TERN_FLUSH_H
#define TERN_FLUSH_H

#include "base/buf.h"
#include "base/mem.h"

#define FLUSH_REQUEST         "flush"
#define FLUSH_ATTR_DOMAIN     "domain"
#define FLUSH_ATTR_SUBDOMAINS "subdomains"
#define FLUSH_ATTR_QUEUE_ID   "queue_id"
/* qmgr's answer to a flush request that carries an id. */
#define FLUSH_ATTR_STATUS     "status"
#define FLUSH_STATUS_OK       "ok"
/* The socket, below $queue_directory/private. */
#define FLUSH_SERVICE         "qmgr"

/*
 * 1 if domain can name a flush: a host name (RFC 1035 labels, at most
 * ADDR_DOMAIN_MAX bytes), not an address literal, not an address.
 */
int flush_domain_valid(const char *domain);

/*
 * Adds the request's attributes to a begun frame (attr_frame_begin or
 * attr_client_frame). domain NULL: everything; subdomains only with a
 * domain. 0, or -1 when the frame is full.
 */
int flush_frame_put(struct buf *frame, const char *domain, int subdomains)
    MTA_NODISCARD;

/*
 * Blocking, for commands: sends the request as a notice to
 * private/qmgr within timeout_s seconds. As root it follows the socket
 * path as $mail_owner (the directory is tern's) and comes back to root
 * afterwards (fatal if it cannot). The caller loaded the configuration
 * and checked domain with flush_domain_valid. 0, or -1 with *error_r
 * (static storage, valid until the next call): mail_owner is missing,
 * or the request could not be delivered (qmgr's socket is absent or
 * refuses: the mail system is down).
 */
int flush_send(
    const char *domain, int subdomains, int timeout_s, const char **error_r);
/* The same for one deferred message; queue_id must be queue_id_valid. */
int flush_send_id(const char *queue_id, int timeout_s, const char **error_r);

#endif
