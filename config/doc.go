// Package config holds Trove's configuration: the Config type with its
// defaults, strict TOML decoding (unknown keys are errors that name their line
// and column), validation that reports every problem at once, and the
// text-unmarshalled Duration and Size types.
//
// Precedence, highest first: command-line flag, environment variable
// (TROVE_LISTEN, TROVE_DATA, TROVE_CONFIG, TROVE_ADMIN_TOKEN), config file,
// default. Flags and environment are applied by main; this package only knows
// the file and the defaults.
package config
