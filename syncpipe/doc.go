// Package syncpipe is the typed protocol between a container's parent (the agent) and its child
// (the container's init before execve).
//
// # Messages
//
// Message kinds are Go types. A [Protocol] is the list of types two peers exchange, built with
// [NewProtocol] from zero values on both sides (they run the same binary); there is no global
// registry. Each type names itself on the wire with Kind, a stable short string. A message is
// encoded as its JSON form, so plans are plain exported data. [*StepError] is part of every
// protocol: it is how the child reports that a step failed, with the errno when there is one, and
// [Receive] hands it back to the parent as an error that works with errors.Is and errors.As.
//
// # Socket and wire format
//
// [Protocol.Pair] makes an AF_UNIX SOCK_SEQPACKET socketpair: datagrams keep their boundaries and
// a zero-length read means the peer is gone. Both ends are close-on-exec; the child's end is passed
// through exec.Cmd.ExtraFiles and wrapped with [Protocol.FromFile] in the child, which keeps it
// close-on-exec so a successful execve closes it and the parent reads end-of-stream
// ([ErrPeerClosed]).
//
// A message's payload is one length byte, the kind name, then the JSON body; at most
// [MaxMessageSize] bytes. The payload travels in fragments of up to 64 KiB, one datagram each,
// behind an 8-byte header:
//
//	byte 0    version, 1
//	byte 1    flags: 1 first fragment, 2 last fragment (3 for a message in one datagram)
//	byte 2    number of fds attached; only the first fragment carries fds (SCM_RIGHTS)
//	byte 3    zero
//	bytes 4-7 length of the whole payload, big endian, repeated in every fragment
//
// Every fragment but the last is full. A message carries at most [MaxFiles] fds; the receiver
// gets them close-on-exec (MSG_CMSG_CLOEXEC) and checks their number against the header.
//
// # Errors and deadlines
//
// Send and Recv take a context: its deadline and cancellation reach the blocked system call
// through the Go netpoller, so a hung child never blocks the parent. A peer that closes (exits,
// crashes, or execs) gives [ErrPeerClosed], also in the middle of a message. Anything that does not
// follow the format above is [ErrMalformed] or [ErrMessageTooLarge], never a panic, and fds that
// came with a rejected message are closed. After a framing error, or a deadline in the middle of a
// multi-datagram message, the stream is out of step and the Conn keeps returning that error; a
// message that was framed correctly but does not decode (unknown kind, bad JSON) is dropped and
// the stream goes on.
//
// # Privileges
//
// None. The package creates only the socketpair and the fds it receives.
package syncpipe
