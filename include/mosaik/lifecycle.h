/* How objects of both libraries begin and end, and the one close callback.
 *
 * The verbs mean the same everywhere, mk_* and co_*:
 *
 *   _new    makes an object this process owns: a node, its transport, a
 *           service serving an ALPN on a node (streams, blobs, a ticket
 *           issuer, a compute runner), a collection, a registry.
 *   _open   makes a handle on something that also exists beyond this
 *           process, shared with other nodes: a group's committee, a
 *           stream (producer, consumer), a replica, a group client, a
 *           module or confluence reader, a module host, a committee member.
 *   _close  ends anything that runs on the loop (timers, links, an ALPN
 *           served): asynchronous; the memory is released before its
 *           mk_close_cb runs, and nothing of it is touched after. Never
 *           called twice.
 *   _free   ends what holds memory only: synchronous, NULL is fine.
 *   _init   fills caller memory in place (mk_buf_init, mk_ticket_init);
 *           its pair is _free.
 *   _start  the second step of an object that exists before it acts:
 *           mk_node_start (made, then watchers and a ticket set, then it
 *           announces), and requests (mk_blob_fetch_start), which end by
 *           completing or being cancelled.
 *
 * There is no _stop: nothing here is stopped to be started again. A
 * service that serves an ALPN stops serving it in its _close
 * (mk_transport_unserve), so it may be closed before its node.
 */
#ifndef MK_LIFECYCLE_H
#define MK_LIFECYCLE_H

/* Called once a _close has finished, with the `data` given to it. */
typedef void (*mk_close_cb)(void *data);

#endif /* MK_LIFECYCLE_H */
