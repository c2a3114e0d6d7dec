package entry

// Pending is the number of groups marked and not yet passed by advance.
func (o *Ordered[T]) Pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.pending)
}
