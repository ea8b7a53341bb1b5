// Package web holds mirrord's web UI sources: HTML templates (templates/)
// and the stylesheet and script they load (static/), embedded in the
// binary so the UI works offline and never loads anything from elsewhere.
// internal/server renders the templates and serves static/ under
// /ui/static/.
package web

import "embed"

// FS holds templates/*.html and static/*.
//
//go:embed templates/*.html static/*
var FS embed.FS
