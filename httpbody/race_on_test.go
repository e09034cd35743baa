//go:build race

package httpbody

// raceEnabled says the tests run under -race, where compression is an
// order of magnitude slower.
const raceEnabled = true
