package agent

// AdminAddr is the admin server's address, or "" when it is off.
func (a *Agent) AdminAddr() string {
	if a.admin == nil {
		return ""
	}
	return a.admin.Addr()
}
