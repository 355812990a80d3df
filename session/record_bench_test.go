package session_test

import (
	"testing"
	"time"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/session"
)

var benchRecord = []byte(`{"ServerID":7,"ServerName":"querynode","Address":"10.0.0.1:21123","Exclusive":false,` +
	`"Stopping":false,"Version":"2.4.1","LeaseID":7587861262018265090,"HostName":"node-a",` +
	`"ServerLabels":{"zone":"a"},"TriggerKill":true}`)

func BenchmarkDecode(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := session.Decode(benchRecord); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := session.Decode(benchRecord); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkEncode(b *testing.B) {
	s, err := session.Decode(benchRecord)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Encode(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Encode(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkRegistrationState measures the reads a call site makes on a
// live Registration: Session, IsActive and the Lost channel.
func BenchmarkRegistrationState(b *testing.B) {
	m := etcdtest.Start(b)
	r := regMust(b, m.Client, regSession("querynode", "10.0.0.1:1", false), regConfig(5*time.Second))
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if r.Session().ServerID == 0 || !r.IsActive() || r.Lost() == nil {
				b.Fatal("not registered")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if r.Session().ServerID == 0 || !r.IsActive() || r.Lost() == nil {
					b.Error("not registered")
					return
				}
			}
		})
	})
}
