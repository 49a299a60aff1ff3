package journal

import (
	"testing"
	"time"
)

func TestCrashLoopBackoff(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		stalled int
		want    time.Duration // 0: not crash-looping
	}{
		{0, 0}, {1, 0}, {2, 0},
		{3, time.Minute}, {4, 2 * time.Minute}, {5, 4 * time.Minute}, {8, 32 * time.Minute},
		{9, time.Hour}, {10, time.Hour}, {1000, time.Hour},
	} {
		got := CrashLoopUntil(c.stalled, at)
		if c.want == 0 && !got.IsZero() || c.want != 0 && !got.Equal(at.Add(c.want)) {
			t.Errorf("CrashLoopUntil(%d) = %v, want %v later", c.stalled, got, c.want)
		}
	}
}
