// Package sample holds the word lists of the example's sample data, shared
// by the service's seed and the benchmark, so both make users of one shape.
package sample

// Words the sample users are made of.
var (
	FirstNames = []string{
		"Ada", "Alan", "Barbara", "Brian", "Claude", "Dennis", "Donald", "Edsger",
		"Frances", "Grace", "Guido", "Hedy", "Ivan", "Jean", "John", "Katherine",
		"Ken", "Leslie", "Linus", "Margaret", "Niklaus", "Radia", "Rob", "Robin",
		"Shafi", "Sophie", "Tim", "Tony", "Vint", "Whitfield", "Yukihiro", "Zhang",
	}
	LastNames = []string{
		"Allen", "Backus", "Bartik", "Berners-Lee", "Cerf", "Dijkstra", "Goldwasser",
		"Hamilton", "Hoare", "Hopper", "Johnson", "Kay", "Knuth", "Lamport", "Liskov",
		"Lovelace", "Matsumoto", "McCarthy", "Milner", "Perlman", "Pike", "Ritchie",
		"Rossum", "Shannon", "Sutherland", "Thompson", "Torvalds", "Turing", "Wilson", "Wirth",
	}
	Cities = []string{
		"Amsterdam", "Berlin", "Cape Town", "Lagos", "Lisbon", "London", "Montreal",
		"Osaka", "Paris", "São Paulo", "Seoul", "Sydney", "Toronto", "Zürich",
	}
	Tags = []string{
		"go", "mongodb", "http", "json", "databases", "distributed", "security",
		"testing", "performance", "design", "music", "travel", "photography", "cooking",
	}
)
