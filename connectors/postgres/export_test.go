package postgres

import "context"

// SetInject makes the next calls of op fail with the error fn returns (nil
// lets a call through); tests use it to check error classification.
func SetInject(c *Connector, fn func(op string) error) { c.inject = fn }

// ExecForTest runs sql on the connector's own pool.
func ExecForTest(c *Connector, sql string) error {
	_, err := c.pool.Exec(context.Background(), sql)
	return err
}
