package window

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type counter struct{ n int }

func (c *counter) Reset() { c.n = 0 }

// add counts v in the current bucket and returns the total of the ring.
func add(r *Ring[counter, *counter], v int) int {
	_, b := r.Current()
	b.n += v
	total := 0
	for i := range r.Len() {
		total += r.At(i).n
	}
	return total
}

func TestRingSlides(t *testing.T) {
	r := New[counter](4*time.Second, 4) // slots of 1 s
	require.Equal(t, int64(time.Second), r.Width())
	sec := int64(time.Second)

	require.Equal(t, 1, add(&r, 1))
	require.False(t, r.Due(sec-1), "still slot 0")
	require.False(t, r.Advance(sec-1, nil))

	require.True(t, r.Due(sec))
	require.True(t, r.Advance(sec, nil))
	require.Equal(t, int64(1), r.Epoch())
	require.Equal(t, 3, add(&r, 2), "slot 0 is still in the window")

	require.True(t, r.Advance(3*sec, nil))
	require.Equal(t, 6, add(&r, 3))

	// Slot 4 reuses slot 0's bucket, which leaves the window.
	require.True(t, r.Advance(4*sec, nil))
	require.Equal(t, 9, add(&r, 4), "1 expired; 2 + 3 + 4 remain")
	idx, _ := r.Current()
	require.Equal(t, uint32(0), idx)
}

func TestRingNeverMovesBackwards(t *testing.T) {
	r := New[counter](4*time.Second, 4)
	sec := int64(time.Second)
	require.True(t, r.Advance(5*sec, nil))
	add(&r, 7)
	require.False(t, r.Advance(2*sec, nil))
	require.Equal(t, int64(5), r.Epoch())
	require.Equal(t, 7, add(&r, 0), "an older time empties nothing")
}

// After a pause of a window or more every bucket is emptied once, however
// long the pause.
func TestRingLongPauseEmptiesAll(t *testing.T) {
	r := New[counter](4*time.Second, 4)
	sec := int64(time.Second)
	for i := range int64(4) {
		r.Advance(i*sec, nil)
		add(&r, 1)
	}
	require.Equal(t, 4, add(&r, 0))
	require.True(t, r.Advance(1_000_000*sec, nil))
	require.Equal(t, 0, add(&r, 0))
	require.Equal(t, int64(1_000_000), r.Epoch())
}

// fill sees the new current bucket empty, and its content is there when
// the position is published.
func TestRingAdvanceFill(t *testing.T) {
	r := New[counter](2*time.Second, 2)
	sec := int64(time.Second)
	add(&r, 5)
	r.Advance(sec, func(b *counter) { b.n += 10 }) // bucket 1, empty so far
	idx, b := r.Current()
	require.Equal(t, uint32(1), idx)
	require.Equal(t, 10, b.n)
	require.True(t, r.IsCurrent(1))
	require.False(t, r.IsCurrent(0))

	r.Advance(2*sec, func(b *counter) {
		require.Zero(t, b.n, "the bucket is emptied before fill")
		b.n = 1
	})
	require.Equal(t, 11, add(&r, 0))
}

func TestRingReset(t *testing.T) {
	r := New[counter](4*time.Second, 4)
	sec := int64(time.Second)
	r.Advance(6*sec, nil)
	add(&r, 3)
	r.Reset(5 * sec) // earlier than the current slot: Reset moves anyway
	require.Equal(t, int64(5), r.Epoch())
	idx, _ := r.Current()
	require.Equal(t, uint32(1), idx)
	require.Equal(t, 0, add(&r, 0))
}
