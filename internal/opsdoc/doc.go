// Package opsdoc holds the test that keeps docs/operations.md's tables of
// defaults equal to what the DefaultConfig functions of session,
// clientmanager and startup return, field by field, so the document
// cannot drift from the code. It has no API.
package opsdoc
