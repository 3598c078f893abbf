import ArgumentParser
SKConv.main()
