package calc

import "testing"

func TestDouble(t *testing.T) {
	if got := Double(2); got != 4 {
		t.Fatalf("Double(2) = %d, want 4", got)
	}
}

func TestDoubleIsInt(t *testing.T) {
	_ = Double(1)
}
