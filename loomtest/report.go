package loomtest

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/loomwork/loom/definition"
)

// WriteText prints results the way `go test` does: with verbose, a RUN
// and a PASS or FAIL line per case; without, only the failures; then an
// "ok" or "FAIL" line per file.
func WriteText(w io.Writer, results []*FileResult, verbose bool) {
	for _, fr := range results {
		if fr.Err != nil {
			fmt.Fprintf(w, "--- FAIL: %s\n", fr.Path)
			for _, line := range errorLines(fr.Err) {
				fmt.Fprintf(w, "    %s\n", line)
			}
			fmt.Fprintf(w, "FAIL\t%s\t[invalid test file or definition]\n", fr.Path)
			continue
		}
		for _, cr := range fr.Cases {
			if verbose {
				fmt.Fprintf(w, "=== RUN   %s\n", cr.Case.Name)
			}
			if cr.Passed() {
				if verbose {
					fmt.Fprintf(w, "--- PASS: %s (%.2fs)\n", cr.Case.Name, cr.Duration.Seconds())
				}
				continue
			}
			fmt.Fprintf(w, "--- FAIL: %s (%.2fs)\n", cr.Case.Name, cr.Duration.Seconds())
			for _, f := range cr.Failures {
				for _, line := range strings.Split(f, "\n") {
					fmt.Fprintf(w, "    %s\n", line)
				}
			}
		}
		status := "ok  "
		if !fr.Passed() {
			status = "FAIL"
		}
		note := fmt.Sprintf("%d cases", len(fr.Cases))
		if len(fr.Cases) == 1 {
			note = "1 case"
		}
		if len(fr.Cases) == 0 {
			note = "[no cases to run]"
		}
		fmt.Fprintf(w, "%s\t%s\t%.3fs\t%s\n", status, fr.Path, fr.Duration.Seconds(), note)
	}
}

// errorLines is an invalid file's problems, one per line.
func errorLines(err error) []string {
	var list definition.ErrorList
	if errors.As(err, &list) {
		out := make([]string, len(list))
		for i, e := range list {
			out[i] = e.Error()
		}
		return out
	}
	return strings.Split(strings.TrimSpace(err.Error()), "\n")
}

// Summary counts the cases that ran, failed, and the files that were
// invalid.
func Summary(results []*FileResult) (cases, failed, invalid int) {
	for _, fr := range results {
		if fr.Err != nil {
			invalid++
			continue
		}
		for _, cr := range fr.Cases {
			cases++
			if !cr.Passed() {
				failed++
			}
		}
	}
	return
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes results as a JUnit XML report, the format CI systems
// read: a testsuite per file, a testcase per case; an invalid file is one
// testcase with an error.
func WriteJUnit(w io.Writer, results []*FileResult) error {
	var all junitSuites
	var total float64
	for _, fr := range results {
		s := junitSuite{Name: fr.Path, Time: seconds(fr.Duration.Seconds())}
		total += fr.Duration.Seconds()
		if fr.Err != nil {
			lines := errorLines(fr.Err)
			s.Tests, s.Errors = 1, 1
			s.Cases = append(s.Cases, junitCase{Name: "(load)", Classname: fr.Path, Time: s.Time,
				Error: &junitProblem{Message: lines[0], Type: "invalid", Text: strings.Join(lines, "\n")}})
		}
		for _, cr := range fr.Cases {
			jc := junitCase{Name: cr.Case.Name, Classname: fr.Path, Time: seconds(cr.Duration.Seconds())}
			s.Tests++
			if !cr.Passed() {
				s.Failures++
				first := strings.SplitN(cr.Failures[0], "\n", 2)[0]
				jc.Failure = &junitProblem{Message: first, Type: "assertion", Text: strings.Join(cr.Failures, "\n")}
			}
			s.Cases = append(s.Cases, jc)
		}
		all.Tests += s.Tests
		all.Failures += s.Failures
		all.Errors += s.Errors
		all.Suites = append(all.Suites, s)
	}
	all.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(all); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func seconds(s float64) string { return fmt.Sprintf("%.3f", s) }
