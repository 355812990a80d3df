package breaker

import (
	"context"
	"testing"

	"github.com/cockroachdb/errors"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestClassifyCode(t *testing.T) {
	for _, tc := range []struct {
		code codes.Code
		want Outcome
	}{
		{codes.Unavailable, Failure},
		{codes.Unknown, Failure},
		{codes.Internal, Failure},
		{codes.DeadlineExceeded, Failure},
		{codes.ResourceExhausted, Failure},
		{codes.DataLoss, Failure},
		{codes.OK, Success},
		{codes.InvalidArgument, Success},
		{codes.NotFound, Success},
		{codes.AlreadyExists, Success},
		{codes.FailedPrecondition, Success},
		{codes.PermissionDenied, Success},
		{codes.Unauthenticated, Success},
		{codes.OutOfRange, Success},
		{codes.Unimplemented, Success},
		{codes.Canceled, Success},
		{codes.Aborted, Success},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			require.Equal(t, tc.want, ClassifyCode(tc.code))
			err := status.Error(tc.code, "x")
			if tc.code == codes.OK {
				return // status.Error(OK) is nil
			}
			require.Equal(t, tc.want, Classify(err, context.Background()))
			require.Equal(t, tc.want, Classify(errors.Wrap(err, "calling node 7"), context.Background()), "wrapped")
		})
	}
}

func TestClassify(t *testing.T) {
	live := context.Background()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		err  error
		ctx  context.Context
		want Outcome
	}{
		{"nil is a success", nil, live, Success},
		{"nil with a cancelled caller is still a success", nil, cancelled, Success},
		{"caller cancelled: excluded", status.Error(codes.Canceled, "x"), cancelled, Excluded},
		{"caller cancelled, node error: excluded", status.Error(codes.Unavailable, "x"), cancelled, Excluded},
		{"own attempt timeout: failure", context.DeadlineExceeded, live, Failure},
		{"own attempt timeout, wrapped: failure", errors.Wrap(context.DeadlineExceeded, "attempt 2"), live, Failure},
		{"cancelled by someone else: success", context.Canceled, live, Success},
		{"plain error: failure (code Unknown)", errors.New("connection reset"), live, Failure},
		{"nil caller context is never done", status.Error(codes.Unavailable, "x"), nil, Failure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Classify(tc.err, tc.ctx))
		})
	}
}

func TestBreakerClassifierOverride(t *testing.T) {
	cfg := DefaultConfig()
	errBusy := errors.New("busy")
	cfg.Classifier = func(err error) Outcome {
		if errors.Is(err, errBusy) {
			return Failure
		}
		return Success
	}
	b, _ := newTestBreaker(t, cfg)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	require.Equal(t, Failure, b.Classify(errBusy, context.Background()))
	require.Equal(t, Success, b.Classify(status.Error(codes.Unavailable, "x"), context.Background()), "the override decides")
	require.Equal(t, Success, b.Classify(nil, context.Background()))
	require.Equal(t, Excluded, b.Classify(errBusy, cancelled), "caller cancellation comes first")

	for range cfg.ConsecutiveFailures {
		tok, err := b.Allow()
		require.NoError(t, err)
		b.Done(tok, errBusy, context.Background())
	}
	require.Equal(t, StateOpen, b.State())
}
