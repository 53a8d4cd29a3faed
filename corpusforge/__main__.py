from corpusforge.cli.main import main

main()
