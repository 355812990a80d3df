package app

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/startup"
)

func TestAbnormalAfterFlag(t *testing.T) {
	f, err := parse("test", nil, NodeDefaults, io.Discard)
	require.NoError(t, err)
	require.Equal(t, startup.DefaultConfig().AbnormalAfter, f.abnormalAfter)
	f, err = parse("test", []string{"-abnormal-after", "5s"}, NodeDefaults, io.Discard)
	require.NoError(t, err)
	require.Equal(t, 5*time.Second, f.abnormalAfter)
}
