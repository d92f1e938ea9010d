package calc

func Double(x int) int {
	return x + x + 1
}
