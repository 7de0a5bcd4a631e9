package worker

import "fmt"

// decoder accumulates what one message asks for while its items are decoded, deduplicating
// within the message (first occurrence wins).
type decoder struct {
	trust     Trust
	out       Decoded
	probes    int
	principal map[string]bool
	group     map[string]bool
	lifecycle map[LifecycleEvent]bool
}

func newDecoder(trust Trust) *decoder {
	return &decoder{
		trust:     trust,
		principal: map[string]bool{},
		group:     map[string]bool{},
		lifecycle: map[LifecycleEvent]bool{},
	}
}

func (d *decoder) addTarget(t Target) {
	if d.principal[t.Principal] {
		return
	}
	d.principal[t.Principal] = true
	d.out.Principals = append(d.out.Principals, t)
}

func (d *decoder) addGroup(id string) {
	if d.group[id] {
		return
	}
	d.group[id] = true
	d.out.Groups = append(d.out.Groups, id)
}

func (d *decoder) addLifecycle(e LifecycleEvent) {
	if d.lifecycle[e] {
		return
	}
	d.lifecycle[e] = true
	d.out.Lifecycle = append(d.out.Lifecycle, e)
}

func (d *decoder) addProbe() { d.probes++ }

// reject records that item i was dropped. Descriptions are built from fixed text and
// quoted() fragments only, never from a clientState.
func (d *decoder) reject(i int, reason, format string, args ...any) {
	d.out.Rejected = append(d.out.Rejected, &PermanentError{
		Reason:      reason,
		Description: fmt.Sprintf("item %d: ", i) + fmt.Sprintf(format, args...),
	})
}

// result returns the decoded message. A message whose only items are probes is a probe; a
// probe mixed with real items is ignored and the real items stand.
func (d *decoder) result() Decoded {
	out := d.out
	if d.probes > 0 && len(out.Principals) == 0 && len(out.Groups) == 0 &&
		len(out.Lifecycle) == 0 && len(out.Rejected) == 0 {
		return Decoded{Probe: true}
	}
	return out
}
