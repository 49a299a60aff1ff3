package definition

import "strings"

// StepAt returns the step a journal path names in wf (see docs/design.md,
// "Path grammar"): item indices and attempts select the same step
// (`m[3]@2/approve` is the step `approve` of map `m`'s inline steps), or
// nil when the path names no step of wf (a compensation, a fallback,
// `#output`, or a path of another definition).
func (wf *Workflow) StepAt(path string) *Step {
	list := wf.Steps
	segs := strings.Split(path, "/")
	for i := 0; i < len(segs); i++ {
		key, attempt, retried := strings.Cut(segs[i], "@")
		key, item, indexed := strings.Cut(key, "[")
		if retried && !isDigits(attempt) || indexed && !(strings.HasSuffix(item, "]") && isDigits(strings.TrimSuffix(item, "]"))) {
			return nil
		}
		st := stepKeyed(list, key)
		if st == nil {
			return nil
		}
		if i == len(segs)-1 {
			return st
		}
		if indexed {
			// An item or iteration: its steps follow.
			switch {
			case st.Kind == KindMap:
				list = st.Map.Steps
			case st.Kind == KindFor:
				list = st.For.Steps
			default:
				return nil
			}
			continue
		}
		// A construct: the next segment names its block.
		i++
		if list = block(st, segs[i]); list == nil {
			return nil
		}
	}
	return nil
}

// block returns the steps of st's block named seg (a parallel branch, a
// switch arm, try, catch or finally).
func block(st *Step, seg string) []*Step {
	switch st.Kind {
	case KindParallel:
		for _, br := range st.Parallel {
			if br.Name == seg {
				return br.Steps
			}
		}
	case KindSwitch:
		for _, c := range st.Switch {
			if c.Key == seg {
				return c.Steps
			}
		}
	case KindTry:
		switch {
		case seg == "try":
			return st.Try.Steps
		case seg == "catch" && st.Try.Catch != nil:
			return st.Try.Catch.Steps
		case seg == "finally":
			return st.Try.Finally
		}
	}
	return nil
}

func stepKeyed(list []*Step, key string) *Step {
	for _, st := range list {
		if st.Key == key {
			return st
		}
	}
	return nil
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}
