// Package config holds Trove's configuration: the Config type with its
// defaults, strict TOML decoding (unknown keys are errors that name their line
// and column), validation that reports every problem at once, and the
// text-unmarshalled Duration and Size types.
//
// Precedence, highest first: command-line flag, environment variable, config
// file, default. Every key outside the arrays of tables ([[apps]],
// [[tokens]]) has a variable, derived from the struct's toml tags (EnvVars):
// TROVE_<KEY> for a top-level key, TROVE_<SECTION>_<KEY> for a key of a
// section (TROVE_INGEST_DEDUP_WINDOW); TROVE_DATA is kept as the older name of
// TROVE_DATA_DIR. ApplyEnv applies them over the file; main reads the file
// (TROVE_CONFIG or -config), applies the environment, then its flags.
package config
