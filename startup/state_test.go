package startup

import (
	"testing"

	"github.com/cockroachdb/errors"
	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

var allStates = []State{StateInitializing, StateWaitingDependencies, StateStarting, StateRegistering,
	StateStandBy, StateHealthy, StateAbnormal, StateStopping, StateStopped}

// pathTo lists legal transitions from a new machine to each state.
var pathTo = map[State][]State{
	StateInitializing:        nil,
	StateWaitingDependencies: {StateWaitingDependencies},
	StateStarting:            {StateWaitingDependencies, StateStarting},
	StateRegistering:         {StateWaitingDependencies, StateStarting, StateRegistering},
	StateStandBy:             {StateWaitingDependencies, StateStarting, StateRegistering, StateStandBy},
	StateHealthy:             {StateWaitingDependencies, StateStarting, StateRegistering, StateHealthy},
	StateAbnormal:            {StateWaitingDependencies, StateStarting, StateRegistering, StateHealthy, StateAbnormal},
	StateStopping:            {StateStopping},
	StateStopped:             {StateStopping, StateStopped},
}

// machineIn returns a machine driven to s through legal transitions.
func machineIn(t testing.TB, s State) *machine {
	t.Helper()
	m := newMachine(zap.NewNop(), clockwork.NewFakeClock())
	for _, next := range pathTo[s] {
		_, err := m.transition(next, "test")
		require.NoError(t, err)
	}
	require.Equal(t, s, m.current())
	return m
}

func TestStateString(t *testing.T) {
	for _, s := range allStates {
		t.Run(s.String(), func(t *testing.T) {
			got, ok := ParseState(s.String())
			require.True(t, ok)
			require.Equal(t, s, got)
		})
	}
	require.Equal(t, "Healthy", StateHealthy.String())
	require.Equal(t, "StandBy", StateStandBy.String())
	require.Equal(t, "State(42)", State(42).String())
	_, ok := ParseState("healthy")
	require.False(t, ok, "names are case-sensitive")
}

func TestTransitionTable(t *testing.T) {
	allowed := map[[2]State]bool{}
	for _, p := range [][2]State{
		{StateInitializing, StateWaitingDependencies}, {StateInitializing, StateStopping},
		{StateWaitingDependencies, StateStarting}, {StateWaitingDependencies, StateStopping},
		{StateStarting, StateRegistering}, {StateStarting, StateStopping},
		{StateRegistering, StateHealthy}, {StateRegistering, StateStandBy}, {StateRegistering, StateStopping},
		{StateStandBy, StateHealthy}, {StateStandBy, StateAbnormal}, {StateStandBy, StateStopping},
		{StateHealthy, StateAbnormal}, {StateHealthy, StateStandBy}, {StateHealthy, StateStopping},
		{StateAbnormal, StateHealthy}, {StateAbnormal, StateStandBy}, {StateAbnormal, StateStopping},
		{StateStopping, StateStopped},
	} {
		allowed[p] = true
	}
	for _, from := range allStates {
		for _, to := range allStates {
			legal := allowed[[2]State{from, to}]
			t.Run(from.String()+"→"+to.String(), func(t *testing.T) {
				require.Equal(t, legal, CanTransition(from, to))
				m := machineIn(t, from)
				_, err := m.transition(to, "test")
				if legal {
					require.NoError(t, err)
					require.Equal(t, to, m.current())
					return
				}
				require.ErrorIs(t, err, ErrIllegalTransition)
				var ite *IllegalTransitionError
				require.True(t, errors.As(err, &ite))
				require.Equal(t, from, ite.From)
				require.Equal(t, to, ite.To)
				require.Equal(t, from, m.current(), "an illegal transition changes nothing")
			})
		}
	}
	require.False(t, CanTransition(State(-1), StateHealthy))
	require.False(t, CanTransition(State(99), StateHealthy))
}

func TestToMilvusStateCode(t *testing.T) {
	for _, tc := range []struct {
		s    State
		want int32
	}{
		{StateInitializing, 0}, {StateWaitingDependencies, 0}, {StateStarting, 0}, {StateRegistering, 0},
		{StateHealthy, 1}, {StateAbnormal, 2}, {StateStandBy, 3}, {StateStopping, 4},
		{StateStopped, 2}, {State(99), 2},
	} {
		t.Run(tc.s.String(), func(t *testing.T) { require.Equal(t, tc.want, ToMilvusStateCode(tc.s)) })
	}
}
