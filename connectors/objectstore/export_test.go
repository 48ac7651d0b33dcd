package objectstore

// SetInject makes the next calls of op fail with the error fn returns (nil
// lets a call through); tests use it to check error classification.
func SetInject(c *Connector, fn func(op string) error) { c.inject = fn }
