package server

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3.1 description of /v1. It is written by hand, as
// the contract clients are generated from; TestOpenAPIDescribesTheServer
// keeps it true: every route, every query parameter a route takes, and the
// shape of every answer the test provokes.
//
//go:embed openapi.json
var openAPI []byte

func (s *Server) openAPIDoc(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(openAPI)
	return err
}
