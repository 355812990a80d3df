package identity

import (
	"context"
	"encoding/hex"
	"math/rand/v2"
	"strconv"
	"sync/atomic"

	"google.golang.org/grpc/metadata"
)

// MetadataRequestID carries the ID of the request a call belongs to, so
// that one request can be followed across processes in their logs. Every
// call of a clientmanager Invoke or RoleConn carries one.
const MetadataRequestID = "cm-request-id"

// requestIDKey is the context key of WithRequestID.
type requestIDKey struct{}

// RequestIDKey returns the context key under which WithRequestID stores
// the request ID, for a context type of one's own that answers it: its
// Value must return the ID as a string.
func RequestIDKey() any { return requestIDKey{} }

// WithRequestID returns ctx carrying id as the ID of its request: the
// calls made with it through a clientmanager Client, Invoke or RoleConn
// send it. An empty id returns ctx unchanged.
func WithRequestID(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFrom returns the request ID of ctx: the one WithRequestID put
// in it, else, in a gRPC handler, the one the call being served carries
// (so the calls a handler makes with its context carry its caller's ID)
// unless it is longer than MaxValueLen; "" when there is none.
func RequestIDFrom(ctx context.Context) string {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		return id
	}
	if v := metadata.ValueFromIncomingContext(ctx, MetadataRequestID); len(v) > 0 && len(v[0]) <= MaxValueLen {
		return v[0]
	}
	return ""
}

// idBlock is how many request IDs RequestIDs makes at a time.
const idBlock = 64

// RequestIDs makes request IDs: a random prefix per RequestIDs and a
// counter, unique among the IDs it makes and with overwhelming likelihood
// across processes. It formats idBlock IDs at a time into one string and
// hands out substrings of it, so that Next allocates once per idBlock IDs
// (an ID keeps its block's ~2 KiB alive) and takes no lock.
type RequestIDs struct {
	prefix [16]byte // hex of 8 random bytes
	n      atomic.Uint64
	cur    atomic.Pointer[idBlockOf]
}

// idBlockOf is idBlock consecutive IDs: ID i is s[end[i-1]:end[i]].
type idBlockOf struct {
	s    string
	end  [idBlock]uint16
	next atomic.Int32 // the next ID to hand out; ≥ idBlock: spent
}

// NewRequestIDs returns a RequestIDs with a prefix of its own.
func NewRequestIDs() *RequestIDs {
	var raw [8]byte
	for i := range raw {
		raw[i] = byte(rand.Uint32())
	}
	r := &RequestIDs{}
	hex.Encode(r.prefix[:], raw[:])
	return r
}

// Next returns a new ID: the prefix, "-" and the counter in base 36, such
// as "9f86d081884c7d65-1b". IDs taken concurrently are unique, not
// necessarily in the order of their counters.
func (r *RequestIDs) Next() string {
	for {
		b := r.cur.Load()
		if b != nil {
			if i := b.next.Add(1) - 1; i < idBlock {
				start := uint16(0)
				if i > 0 {
					start = b.end[i-1]
				}
				return b.s[start:b.end[i]]
			}
		}
		// Spent (or none yet): the first to swap in a new block wins; the
		// others' blocks are dropped, and their counters skipped.
		r.cur.CompareAndSwap(b, r.newBlock())
	}
}

// newBlock formats the next idBlock IDs.
func (r *RequestIDs) newBlock() *idBlockOf {
	first := r.n.Add(idBlock) - idBlock + 1
	var buf [idBlock * (len(r.prefix) + 1 + 13)]byte // 13: base-36 digits of a uint64
	b := buf[:0]
	blk := &idBlockOf{}
	for i := range uint64(idBlock) {
		b = append(b, r.prefix[:]...)
		b = append(b, '-')
		b = strconv.AppendUint(b, first+i, 36)
		blk.end[i] = uint16(len(b))
	}
	blk.s = string(b)
	return blk
}
