// Package sqldb holds what the barrier and the message outbox share: the
// dialects, the options, table-name validation, table creation and the
// transaction the SDK opens itself (isolation level and lock timeout).
package sqldb
