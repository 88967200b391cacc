package schemas_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/schemas"
)

var update = flag.Bool("update", false, "rewrite schemas/json and examples/python/testdata from the Go types")

// The JSON Schemas of schemas/json are generated here, by reflection over
// the record types of package recon, so that they cannot drift from what
// recon writes and reads: TestJSONSchemas fails when a file differs from
// what the types give (`go test ./schemas/ -run TestJSONSchemas -update`
// rewrites them). Descriptions come from the types' doc comments in
// recon.go, the values of enumerations from its typed constants. What
// reflection cannot know — which fields a producer must send, the form of an
// IBAN or an identity key — is said below, per type and field.

// publicTopic is one topic whose records others read or write, and what its
// record values are.
type publicTopic struct {
	name  string
	about string // the key, who writes, what a consumer must know
	key   string
	types []any    // the record types; several are told apart by "type"
	ce    []string // their ce_type headers, in the order of types
}

var publicTopics = []publicTopic{
	{name: schemas.TopicBankTransactions, types: []any{recon.BankTransaction{}, recon.Return{}, recon.StatusReport{}},
		ce:    []string{schemas.TypeBankTransaction, schemas.TypeReturn, schemas.TypeStatusReport},
		key:   "a transaction: recon.PartitionKey, the normalized account IBAN + \"/\" + direction (e.g. \"FR7630001007941234567890185/credit\"); a return: its id; a status report: the original end-to-end id",
		about: "Bank transactions (type \"transaction\" or absent), pacs.004 returns (\"return\") and pain.002/pacs.002 status reports (\"status\"), from ingest or a producer writing to Kafka. Partitioned by Kafka's Java murmur2 partitioner of the key: every sighting of one movement must meet in one partition."},
	{name: schemas.TopicLoans, types: []any{recon.Loan{}}, ce: []string{schemas.TypeLoan}, key: "loan_id",
		about: "Loans as POST /v1/loans and PUT /v1/loans/{id} publish them; compacted, a record without value deletes the loan. A loan needs a virtual_iban or a borrower_id."},
	{name: schemas.TopicBorrowers, types: []any{recon.Borrower{}}, ce: []string{schemas.TypeBorrower}, key: "borrower_id",
		about: "Borrowers as POST /v1/borrowers publishes them (IBANs normalized); compacted, a record without value deletes the borrower."},
	{name: schemas.TopicAudit, types: []any{recon.Audit{}}, ce: []string{schemas.TypeAudit}, key: "the subject (a loan_id)",
		about: "Changes people asked for (a loan's terms amended), kept for ever, without personal data."},
	{name: schemas.TopicStatements, types: []any{recon.Statement{}}, ce: []string{schemas.TypeStatement}, key: "account_iban",
		about: "One record per camt.052 report, camt.053 statement or camt.054 notification read by ingest."},
	{name: schemas.TopicMatches, types: []any{recon.Decision{}}, ce: []string{schemas.TypeDecision}, key: "transaction_id",
		about: "The matcher's decision on each bank transaction sighting: posted, suspense, rejected, duplicate or not_booked, with the rule and evidence."},
	{name: schemas.TopicLedgerEntries, types: []any{recon.Entry{}}, ce: []string{schemas.TypeEntry}, key: "loan_id, or \"suspense\" (the partition is the matcher's input partition, not the key's)",
		about: "The journal, the book of record: balanced entries, hash-chained per partition, kept for ever."},
	{name: schemas.TopicAlerts, types: []any{recon.Alert{}}, ce: []string{schemas.TypeAlert}, key: "the alert id",
		about: "Alert edges: firing and resolved."},
	{name: schemas.TopicExpected, types: []any{recon.Expected{}}, ce: []string{schemas.TypeExpected}, key: "the end-to-end id",
		about: "Payments recon instructed (direct-debit collections, disbursements) and each change of their status; compacted: the latest is the current state."},
	{name: schemas.TopicReconciliation, types: []any{recon.Break{}}, ce: []string{schemas.TypeBreak}, key: "account_iban",
		about: "Statement proofs: a camt.053 closing balance against the ledger (type \"proof\") and statement chaining (\"chain\"); the latest record of an id wins."},
	{name: schemas.TopicDeadLetters, types: []any{recon.DeadLetter{}}, ce: []string{schemas.TypeDeadLetter}, key: "the dead letter's id",
		about: "Input recon refused, with its raw bytes (base64) and the reason."},
}

// internalTopics are recon's own plumbing: their records may change in any
// release and no one else should read or write them.
var internalTopics = []string{schemas.TopicRouted, schemas.TopicDedupChangelog, schemas.TopicAlertsState}

// field says what reflection cannot: a field's form, or the values it takes.
type field struct {
	ref     string   // a $defs name instead of the Go type's
	enum    []string // the values of an untyped string
	pattern string
}

// typeRule is what a type needs beyond its Go fields.
type typeRule struct {
	// required lists the fields a record must carry. Unset, it is every
	// field without omitempty: what recon always writes. Set for the types
	// others write, it is what ingest and the matcher require.
	required []string
	fields   map[string]field
	// extra is merged into the type's schema (e.g. anyOf).
	extra map[string]any
	// about is appended to the type's doc comment.
	about string
}

const (
	ibanPattern     = `^[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}$`
	currencyPattern = `^[A-Z]{3}$`
	datePattern     = `^[0-9]{4}-[0-9]{2}-[0-9]{2}$`
	// The lender's account: an IBAN, or in a bank file the account's other
	// identification; normalized (no spaces).
	accountPattern = `^[^\s]{1,34}$`
	// A sighting's identity key (recon.IdentityKey, recon.SightingKey);
	// ingest names the charges and the remainder of a bank entry after it.
	identityPattern = `^bt_[0-9a-f]{24}(:charges|:remainder)?$`
)

var typeRules = map[string]typeRule{
	"BankTransaction": {
		required: []string{"id", "account_iban", "direction", "amount", "currency"},
		fields: map[string]field{
			"type":         {enum: []string{recon.TypeTransaction}},
			"id":           {pattern: identityPattern},
			"account_iban": {pattern: accountPattern},
			"virtual_iban": {pattern: ibanPattern},
			"amount":       {ref: "InputAmount"},
			"entry_amount": {ref: "InputAmount"},
		},
		about: " The id is sha256 over the normalized account IBAN, direction, reference kind and reference: \"bt_\" + hex of its first 12 bytes, of the first of bank_reference (kind \"acctsvcr\"), end_to_end_id (\"e2e\", unless NOTPROVIDED), transaction_id (\"txid\"), entry_reference (\"entry\"); without any, of the producer's own id (kind \"producer\", kept as producer_id). An absent type is a transaction, an absent status is booked. A producer sends an IBAN as account_iban (a bank file may name the account otherwise) and a positive amount: the matcher dead-letters a zero amount, which some bank files report and recon passes on.",
	},
	"Return":       {fields: map[string]field{"type": {enum: []string{recon.TypeReturn}}}},
	"StatusReport": {fields: map[string]field{"type": {enum: []string{recon.TypeStatus}}, "level": {enum: []string{"group", "payment_info", "transaction"}}}},
	"Statement": {fields: map[string]field{
		"type":          {enum: []string{recon.TypeStatement}},
		"balance_check": {enum: []string{"ok", "mismatch", "n/a"}},
	}},
	"Expected": {fields: map[string]field{
		"type":          {enum: []string{recon.TypeExpected}},
		"sequence_type": {enum: []string{"FRST", "RCUR", "OOFF", "FNAL"}},
	}},
	"Loan": {
		required: []string{"loan_id", "currency", "principal"},
		fields: map[string]field{
			"loan_id":      {pattern: `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`},
			"borrower_id":  {pattern: `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`},
			"virtual_iban": {pattern: `^([A-Z]{2}[0-9]{2}[A-Z0-9]{10,30})?$`},
			"principal":    {ref: "InputAmount"},
		},
		extra: map[string]any{"anyOf": []any{
			map[string]any{"required": []string{"virtual_iban"}, "properties": map[string]any{"virtual_iban": map[string]any{"minLength": 1}}},
			map[string]any{"required": []string{"borrower_id"}},
		}},
	},
	"Instalment": {
		required: []string{"due_date"},
		fields:   map[string]field{"principal": {ref: "InputAmount"}, "interest": {ref: "InputAmount"}, "fees": {ref: "InputAmount"}},
	},
	"Borrower": {
		// On a loan (Loan.borrower) it carries only name and iban; on the
		// borrowers topic, borrower_id and virtual_iban are required.
		fields: map[string]field{
			"borrower_id":  {pattern: `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`},
			"virtual_iban": {pattern: ibanPattern},
			"iban":         {pattern: ibanPattern},
		},
	},
	"Audit":      {fields: map[string]field{"kind": {enum: []string{recon.AuditLoanAmended}}}},
	"Alert":      {fields: map[string]field{"state": {enum: []string{"firing", "resolved"}}}},
	"Break":      {fields: map[string]field{"type": {enum: []string{recon.BreakProof, recon.BreakChain}}, "status": {enum: []string{recon.BreakOK, recon.BreakBroken, recon.BreakIncomplete}}}},
	"DeadLetter": {},
}

// topicRequired overrides a type's required fields where it is a topic's
// record, not a part of another record.
var topicRequired = map[string][]string{
	schemas.TopicBorrowers + "/Borrower": {"borrower_id", "virtual_iban"},
}

// generator builds one topic's schema.
type generator struct {
	docs  sourceDocs
	defs  map[string]any
	topic string
}

// schemaFor is the JSON Schema document of a topic's record values.
func (g *generator) schemaFor(p publicTopic) map[string]any {
	g.defs, g.topic = map[string]any{}, p.name
	doc := map[string]any{
		"$schema":     "https://json-schema.org/draft/2020-12/schema",
		"title":       p.name,
		"description": p.about + " Amounts are JSON strings in plain decimal form (\"1234.50\"), never numbers. Records may gain optional fields without a new topic version: ignore what you do not know.",
		"x-kafka-key": p.key,
		"x-ce-type":   p.ce,
	}
	var refs []any
	for _, v := range p.types {
		refs = append(refs, map[string]any{"$ref": "#/$defs/" + g.def(reflect.TypeOf(v))})
	}
	if len(refs) == 1 {
		doc["$ref"] = refs[0].(map[string]any)["$ref"]
	} else {
		doc["oneOf"] = refs
	}
	doc["$defs"] = g.defs
	return doc
}

var (
	decimalType = reflect.TypeFor[decimal.Decimal]()
	timeType    = reflect.TypeFor[time.Time]()
)

// def adds the schema of a named type to $defs and returns its name.
func (g *generator) def(t reflect.Type) string {
	switch t {
	case decimalType:
		g.defs["Amount"] = amountDefs["Amount"]
		return "Amount"
	case timeType:
		g.defs["Time"] = map[string]any{"type": "string", "format": "date-time", "description": "An instant, RFC 3339 (encoding/json's form of time.Time)."}
		return "Time"
	}
	name := t.Name()
	if _, ok := g.defs[name]; ok {
		return name
	}
	switch {
	case t.Kind() == reflect.String:
		s := map[string]any{"type": "string"}
		if d := g.docs.types[name]; d != "" {
			s["description"] = d
		}
		if vals := g.docs.enums[name]; len(vals) > 0 {
			s["enum"] = vals
		}
		if name == "Date" {
			s["pattern"] = datePattern
		}
		g.defs[name] = s
		return name
	case t.Kind() != reflect.Struct:
		panic(fmt.Sprintf("schemas: no JSON Schema for named type %s of kind %s", t, t.Kind()))
	}
	g.defs[name] = nil // placeholder: recursion stops here
	rule := typeRules[name]
	props := map[string]any{}
	var written []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("json")
		if !f.IsExported() || tag == "-" {
			continue
		}
		if !ok || f.Anonymous {
			panic(fmt.Sprintf("schemas: %s.%s has no json tag (or is embedded): say its JSON name", name, f.Name))
		}
		jname, opts, _ := strings.Cut(tag, ",")
		omit := slices.Contains(strings.Split(opts, ","), "omitempty")
		s := g.value(f.Type, omit)
		if fr, ok := rule.fields[jname]; ok {
			switch {
			case fr.ref != "":
				g.defs[fr.ref] = amountDefs[fr.ref]
				s = map[string]any{"$ref": "#/$defs/" + fr.ref}
			case fr.enum != nil:
				s["enum"] = fr.enum
			case fr.pattern != "":
				s["pattern"] = fr.pattern
			}
		}
		if jname == "currency" {
			s["pattern"] = currencyPattern
		}
		if d := g.docs.fields[name+"."+f.Name]; d != "" {
			s["description"] = d
		}
		props[jname] = s
		if !omit {
			written = append(written, jname)
		}
	}
	for jname := range rule.fields {
		if _, ok := props[jname]; !ok {
			panic(fmt.Sprintf("schemas: typeRules[%s] names field %q the type does not have", name, jname))
		}
	}
	required := written
	if rule.required != nil {
		required = rule.required
	}
	if r, ok := topicRequired[g.topic+"/"+name]; ok {
		required = r
	}
	for _, r := range required {
		if _, ok := props[r]; !ok {
			panic(fmt.Sprintf("schemas: %s requires field %q the type does not have", name, r))
		}
	}
	s := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		s["required"] = required
	}
	if d := g.docs.types[name] + rule.about; d != "" {
		s["description"] = d
	}
	for k, v := range rule.extra {
		s[k] = v
	}
	g.defs[name] = s
	return name
}

// value is the schema of a field's type. A nil slice or pointer without
// omitempty is written as null, as encoding/json does.
func (g *generator) value(t reflect.Type, omit bool) map[string]any {
	nullable := func(s map[string]any) map[string]any {
		if omit {
			return s
		}
		return map[string]any{"anyOf": []any{s, map[string]any{"type": "null"}}}
	}
	switch {
	case t.Kind() == reflect.Pointer:
		return nullable(g.value(t.Elem(), true))
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		return nullable(map[string]any{"type": "string", "contentEncoding": "base64"})
	case t.Kind() == reflect.Slice:
		return nullable(map[string]any{"type": "array", "items": g.value(t.Elem(), true)})
	case t.Name() != "" && t.PkgPath() != "":
		return map[string]any{"$ref": "#/$defs/" + g.def(t)}
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	}
	panic(fmt.Sprintf("schemas: no JSON Schema for %s", t))
}

// amountDefs are the forms of amounts: recon writes decimal.Decimal as a
// string in plain decimal form, which is what it accepts from others too
// (inside the limits ingest checks).
var amountDefs = map[string]any{
	"Amount": map[string]any{"type": "string", "pattern": `^-?[0-9]+(\.[0-9]+)?$`,
		"description": "An exact decimal amount as a JSON string in plain form: an optional minus, digits, optionally a point and digits (\"1234.5\", \"-0.01\"); never a JSON number, never an exponent."},
	"InputAmount": map[string]any{"type": "string", "pattern": `^[0-9]{1,18}(\.[0-9]{1,5})?$`,
		"description": "An amount from outside: a non-negative plain decimal string with at most 5 digits after the point and at most 18 digits in all (ingest's limits)."},
}

// sourceDocs is what recon.go says of its types: doc comments, and the
// values of its typed string constants.
type sourceDocs struct {
	types  map[string]string   // type name → doc
	fields map[string]string   // "Type.Field" → doc or line comment
	enums  map[string][]string // type name → constant values, in source order
}

func readDocs(t *testing.T, path string) sourceDocs {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ParseComments)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	d := sourceDocs{types: map[string]string{}, fields: map[string]string{}, enums: map[string][]string{}}
	text := func(cgs ...*ast.CommentGroup) string {
		var parts []string
		for _, cg := range cgs {
			if s := strings.Join(strings.Fields(cg.Text()), " "); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, " ")
	}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, spec := range gd.Specs {
			switch s := spec.(type) {
			case *ast.TypeSpec:
				doc := s.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				d.types[s.Name.Name] = text(doc)
				st, ok := s.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, fl := range st.Fields.List {
					for _, n := range fl.Names {
						d.fields[s.Name.Name+"."+n.Name] = text(fl.Doc, fl.Comment)
					}
				}
			case *ast.ValueSpec:
				typ, ok := s.Type.(*ast.Ident)
				if gd.Tok != token.CONST || !ok {
					continue
				}
				for _, v := range s.Values {
					if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						val, err := strconv.Unquote(lit.Value)
						if err != nil {
							t.Fatalf("%s: constant %s: %v", path, lit.Value, err)
						}
						d.enums[typ.Name] = append(d.enums[typ.Name], val)
					}
				}
			}
		}
	}
	return d
}

// schemaFiles generates every public topic's schema: file name → bytes.
func schemaFiles(t *testing.T) map[string][]byte {
	t.Helper()
	g := &generator{docs: readDocs(t, filepath.Join("..", "recon.go"))}
	files := map[string][]byte{}
	for _, p := range publicTopics {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(g.schemaFor(p)); err != nil {
			t.Fatal(err)
		}
		files[p.name+".schema.json"] = b.Bytes()
	}
	return files
}

const schemaDir = "json"

// TestJSONSchemas checks that schemas/json holds exactly the schemas the Go
// types give, one per public topic.
func TestJSONSchemas(t *testing.T) {
	files := schemaFiles(t)
	if *update {
		if err := os.MkdirAll(schemaDir, 0o755); err != nil {
			t.Fatal(err)
		}
		old, _ := filepath.Glob(filepath.Join(schemaDir, "*.schema.json"))
		for _, f := range old {
			if files[filepath.Base(f)] == nil {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			}
		}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(schemaDir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	onDisk, _ := filepath.Glob(filepath.Join(schemaDir, "*.schema.json"))
	for _, f := range onDisk {
		if files[filepath.Base(f)] == nil {
			t.Errorf("%s: no public topic has this schema; remove it (go test ./schemas/ -run TestJSONSchemas -update)", f)
		}
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(schemaDir, name))
		if err != nil {
			t.Errorf("%v; generate it: go test ./schemas/ -run TestJSONSchemas -update", err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("schemas/json/%s differs from what the Go types give; regenerate: go test ./schemas/ -run TestJSONSchemas -update", name)
		}
	}
}

// TestEveryTopicHasASchema: a topic added to schemas.Topics is either
// published with a schema or named internal.
func TestEveryTopicHasASchema(t *testing.T) {
	known := map[string]bool{}
	for _, p := range publicTopics {
		known[p.name] = true
		if len(p.ce) != len(p.types) {
			t.Errorf("%s: %d record types but %d ce_type values", p.name, len(p.types), len(p.ce))
		}
	}
	for _, n := range internalTopics {
		known[n] = true
	}
	for _, tp := range schemas.Topics {
		if !known[tp.Name] {
			t.Errorf("topic %s has no JSON Schema: add it to publicTopics (schemas/jsonschema_test.go) or to internalTopics", tp.Name)
		}
	}
}
