// Package archtest holds the tests that keep the module's layering: the
// connector seam and the public packages import nothing from internal/,
// feature packages do not import each other where the design keeps them
// apart, and nothing imports the HTTP layer or a command. It has no code;
// its test reads `go list` of the whole module.
package archtest
