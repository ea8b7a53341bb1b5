// Package fuzzguard turns a hang into a crash the Go fuzzer records.
//
// The native fuzzer has no per-input time limit: an input that makes a
// parser loop (or go exponential) stalls a worker until -fuzztime runs
// out, and the input is lost. Arm panics from a timer instead, so the
// worker dies on that input and the fuzzer writes it to testdata/fuzz.
package fuzzguard

import (
	"flag"
	"fmt"
	"time"
)

// Limit is how long one fuzz input may take.
const Limit = 3 * time.Second

// Arm starts the clock for one input; call the returned func when it is
// done: defer fuzzguard.Arm()(). Outside fuzzing (plain `go test`
// replaying the corpus, possibly slowed by -race) it does nothing.
func Arm() (disarm func()) {
	if f := flag.Lookup("test.fuzz"); f == nil || f.Value.String() == "" {
		return func() {}
	}
	start := time.Now()
	t := time.AfterFunc(Limit, func() {
		panic(fmt.Sprintf("fuzz input still running after %v (started %s): a hang or an exponential case", Limit, start.Format(time.TimeOnly)))
	})
	return func() { t.Stop() }
}
