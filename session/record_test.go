package session_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/session"
)

func TestRecordRoundTrip(t *testing.T) {
	in := session.Session{ServerID: 7, ServerName: "querynode", Address: "10.0.0.1:21123", Exclusive: true,
		Stopping: true, Version: "2.4.1", LeaseID: 0x694d7f2a5c3e1b01, HostName: "node-a",
		ServerLabels: map[string]string{"zone": "a", "rack": "3"}}
	b, err := in.Encode()
	require.NoError(t, err)
	out, err := session.Decode(b)
	require.NoError(t, err)
	require.Equal(t, in, out)
	require.Equal(t, "querynode-7@10.0.0.1:21123", out.String())
}

func TestRecordDecodesMilvusValueAndKeepsUnknownFields(t *testing.T) {
	const milvus = `{"ServerID":3,"ServerName":"datanode","Address":"10.0.0.3:21124","Exclusive":false,` +
		`"Stopping":false,"TriggerKill":true,"Version":"2.3.4","LeaseID":7587861262018265090,` +
		`"HostName":"dn-0","IndexEngineVersion":{"CurrentIndexVersion":4,"MinimalIndexVersion":0}}`
	s, err := session.Decode([]byte(milvus))
	require.NoError(t, err)
	require.Equal(t, int64(3), s.ServerID)
	require.Equal(t, "datanode", s.ServerName)
	require.Equal(t, int64(7587861262018265090), s.LeaseID)
	raw, ok := s.Extra("TriggerKill")
	require.True(t, ok)
	require.JSONEq(t, `true`, string(raw))
	_, ok = s.Extra("ServerID")
	require.False(t, ok, "known fields are not extra")

	s.Stopping = true
	b, err := s.Encode()
	require.NoError(t, err)
	var fields map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &fields))
	require.JSONEq(t, `true`, string(fields["TriggerKill"]), "an unknown field survives a re-put")
	require.JSONEq(t, `{"CurrentIndexVersion":4,"MinimalIndexVersion":0}`, string(fields["IndexEngineVersion"]))
	require.JSONEq(t, `true`, string(fields["Stopping"]), "a known field is written from the struct")
	again, err := session.Decode(b)
	require.NoError(t, err)
	require.Equal(t, s, again)
}

func TestRecordRejectsMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		val  []byte
	}{
		{"empty", nil},
		{"not JSON", []byte("querynode-1")},
		{"truncated", []byte(`{"ServerID":1,"ServerName":"q`)},
		{"array", []byte(`[1,2]`)},
		{"null", []byte(`null`)},
		{"ServerID a string", []byte(`{"ServerID":"1","ServerName":"querynode"}`)},
		{"ServerName a number", []byte(`{"ServerID":1,"ServerName":5}`)},
		{"Stopping a string", []byte(`{"ServerID":1,"ServerName":"querynode","Stopping":"yes"}`)},
		{"ServerLabels a list", []byte(`{"ServerID":1,"ServerName":"querynode","ServerLabels":["a"]}`)},
		{"missing ServerID", []byte(`{"ServerName":"querynode"}`)},
		{"zero ServerID", []byte(`{"ServerID":0,"ServerName":"querynode"}`)},
		{"negative ServerID", []byte(`{"ServerID":-4,"ServerName":"querynode"}`)},
		{"missing ServerName", []byte(`{"ServerID":1}`)},
		{"huge", []byte(`{"ServerID":1,"ServerName":"querynode","Pad":"` + strings.Repeat("x", session.MaxValueSize) + `"}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := session.Decode(tc.val)
			require.ErrorIs(t, err, session.ErrMalformed)
			require.Zero(t, s.ServerID, "no partial record")
		})
	}
}

func TestRecordAcceptsTheLargestValue(t *testing.T) {
	head := `{"ServerID":1,"ServerName":"querynode","Pad":"`
	val := []byte(head + strings.Repeat("x", session.MaxValueSize-len(head)-2) + `"}`)
	require.Len(t, val, session.MaxValueSize)
	s, err := session.Decode(val)
	require.NoError(t, err)
	raw, ok := s.Extra("Pad")
	require.True(t, ok)
	require.True(t, bytes.HasPrefix(raw, []byte(`"xxx`)))
}
