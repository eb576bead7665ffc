//go:build cifarnet_cuda

package preflight

import "testing"

func TestSurvive(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"bin/trainer-cuda"}, false},
		{[]string{"bin/trainer-cuda", "train", "--recipe", "fast"}, false},
		{[]string{"bin/trainer-cuda", "devices"}, true},
		{[]string{"bin/trainer-cuda", "eval", "m.cnw"}, false},
		{[]string{"bin/trainer-cuda", "help"}, true},
		{[]string{"bin/trainer-cuda", "--help"}, true},
		{[]string{"bin/trainer-cuda", "train", "-h"}, true},
		{[]string{"bin/trainer-cuda", "version"}, true},
		{[]string{"/x/driver.test", "-test.v"}, true},
		{[]string{"./a.out", "-test.run=X"}, true},
	} {
		if got := survive(c.args); got != c.want {
			t.Errorf("survive(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}
