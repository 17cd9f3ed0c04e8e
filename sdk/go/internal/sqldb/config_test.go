package sqldb

import "testing"

func TestValidateTable(t *testing.T) {
	cases := []struct {
		d     Dialect
		table string
		ok    bool
	}{
		{Postgres, "kubetx_barrier", true},
		{Postgres, "billing.kubetx_barrier", true},
		{MySQL, "shop.kubetx_barrier", true},
		{SQLite, "kubetx_barrier", true},
		{SQLite, "main.kubetx_barrier", false},
		{Postgres, "a.b.c", false},
		{Postgres, "x; DROP TABLE y", false},
		{MySQL, "`x`", false},
		{Postgres, "", false},
		{Postgres, "9lives", false},
	}
	for _, c := range cases {
		if err := ValidateTable(c.d, c.table); (err == nil) != c.ok {
			t.Errorf("%v %q: err %v, want ok=%v", c.d, c.table, err, c.ok)
		}
	}
}

func TestIndexName(t *testing.T) {
	for table, want := range map[string][2]string{
		"kubetx_barrier":  {"kubetx_barrier_created_at", "kubetx_barrier_created_at"},
		"billing.barrier": {"billing.barrier_created_at", "barrier_created_at"},
	} {
		q, b := IndexName(table)
		if q != want[0] || b != want[1] {
			t.Errorf("%s: %s %s", table, q, b)
		}
	}
}

func TestPlaceholders(t *testing.T) {
	if p := Postgres.Placeholders(2); p[0] != "$1" || p[1] != "$2" {
		t.Fatal(p)
	}
	if p := MySQL.Placeholders(2); p[0] != "?" || p[1] != "?" {
		t.Fatal(p)
	}
}
