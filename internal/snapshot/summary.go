package snapshot

import "time"

// The JSON shapes of snapshots and channels. The API and the CLI's --json
// both answer with these, so a script can switch between them.

// SourceSummary is one source in a snapshot listing.
type SourceSummary struct {
	Kind  string `json:"kind"`
	Name  string `json:"name"`
	Files int    `json:"files"`
	Size  int64  `json:"size"`
	Items int    `json:"items"` // packages, refs, ...; files when the source has no item list
}

// Summary is one entry of `snapshot list --json` and GET /api/v1/snapshots.
type Summary struct {
	ID       string          `json:"id"`
	Created  time.Time       `json:"created"`
	Size     int64           `json:"size"`
	Sources  []SourceSummary `json:"sources"`
	Channels []string        `json:"channels"`
}

// Summarize returns rec's summary; chans are the channels pointing at it.
func Summarize(rec *Record, chans []string) Summary {
	if chans == nil {
		chans = []string{}
	}
	ss := Summary{ID: rec.ID, Created: rec.Created, Size: rec.Size(), Sources: make([]SourceSummary, 0, len(rec.Sources)), Channels: chans}
	for _, src := range rec.Sources {
		items := src.NItems
		if src.Items == "" && items == 0 {
			items = src.Files
		}
		ss.Sources = append(ss.Sources, SourceSummary{Kind: src.Kind, Name: src.Name, Files: src.Files, Size: src.Size, Items: items})
	}
	return ss
}

// Detail is `snapshot show --json` and GET /api/v1/snapshots/{ID}: the full
// record, its total size and the channels pointing at it.
type Detail struct {
	*Record
	Size     int64    `json:"size"`
	Channels []string `json:"channels"`
}

// Detailed returns rec's detail; chans are the channels pointing at it.
func Detailed(rec *Record, chans []string) Detail {
	if chans == nil {
		chans = []string{}
	}
	return Detail{Record: rec, Size: rec.Size(), Channels: chans}
}

// ChannelSummary is one entry of GET /api/v1/channels.
type ChannelSummary struct {
	Name     string    `json:"name"`
	Snapshot string    `json:"snapshot"`
	Previous string    `json:"previous,omitempty"`
	Updated  time.Time `json:"updated"`
	Moves    int       `json:"moves"`
}

// Summarize returns the channel's summary.
func (ch *Channel) Summarize() ChannelSummary {
	cs := ChannelSummary{Name: ch.Name, Snapshot: ch.Snapshot, Previous: ch.Previous(), Moves: len(ch.History)}
	if n := len(ch.History); n > 0 {
		cs.Updated = ch.History[n-1].At
	}
	return cs
}

// ChannelDetail is GET /api/v1/channels/{C}, the promote and rollback
// answers (API and CLI --json alike).
type ChannelDetail struct {
	*Channel
	Previous string `json:"previous,omitempty"`
}

// Detailed returns the channel with its history (never null).
func (ch *Channel) Detailed() ChannelDetail {
	if ch.History == nil {
		ch.History = []Move{}
	}
	return ChannelDetail{Channel: ch, Previous: ch.Previous()}
}
