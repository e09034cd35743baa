package apierr

import (
	"errors"
	"fmt"
	"testing"
)

func TestError(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		kind  error
		field string
	}{
		{name: "plain", err: New(Invalid, "userId", "userId is required"), kind: Invalid, field: "userId"},
		{name: "wrapped", err: fmt.Errorf("cannot decode: %w", New(TooLarge, "", "too big")), kind: TooLarge},
		{name: "other error", err: errors.New("x"), kind: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.kind != nil && !errors.Is(tt.err, tt.kind) {
				t.Fatalf("errors.Is(%v, %v) = false; want true", tt.err, tt.kind)
			}
			if errors.Is(tt.err, Conflict) {
				t.Fatalf("errors.Is(%v, Conflict) = true; want false", tt.err)
			}
			if got := Field(tt.err); got != tt.field {
				t.Fatalf("Field = %q; want %q", got, tt.field)
			}
			if got := Failure(tt.err); (got == nil) != (tt.kind != nil) {
				t.Fatalf("Failure(%v) = %v; want nil exactly for a refusal (an *Error)", tt.err, got)
			}
		})
	}
	if err := Failure(nil); err != nil {
		t.Errorf("Failure(nil) = %v; want nil", err)
	}
}
